// The student's pages, all under /me.
import { Alert } from "../../components";
import { useT } from "../../context";
import { DashboardPage } from "./Dashboard";

export function StudentArea(props: { path: string }) {
  const t = useT();
  if (props.path === "/me") return <DashboardPage />;
  return <Alert kind="error">{t("notFound")}</Alert>;
}
