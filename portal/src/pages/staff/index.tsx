// The staff console, all under /staff; what each role sees follows its permissions.
import { Alert } from "../../components";
import { useT } from "../../context";
import type { Claims } from "../../session";
import { HomePage } from "../Home";

export function StaffArea(props: { path: string; claims: Claims }) {
  const t = useT();
  if (props.path === "/staff") return <HomePage />;
  return <Alert kind="error">{t("notFound")}</Alert>;
}
