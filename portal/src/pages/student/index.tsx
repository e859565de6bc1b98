// The student's pages, all under /me, with a navigation between them.
import { Alert } from "../../components";
import { useT } from "../../context";
import { CardPage } from "./Card";
import { DashboardPage } from "./Dashboard";
import { DocumentsPage } from "./Documents";
import { FormPage } from "./Form";
import { InboxPage } from "./Inbox";
import { StudentNav } from "./shared";

const PAGES: Record<string, () => preact.JSX.Element> = {
  "/me": DashboardPage,
  "/me/form": FormPage,
  "/me/documents": DocumentsPage,
  "/me/inbox": InboxPage,
  "/me/card": CardPage,
};

export function StudentArea(props: { path: string }) {
  const t = useT();
  const path = props.path.replace(/\/+$/, "") || "/me";
  const Page = PAGES[path];
  return (
    <>
      <StudentNav path={path} />
      {Page ? <Page key={path} /> : <Alert kind="error">{t("notFound")}</Alert>}
    </>
  );
}
