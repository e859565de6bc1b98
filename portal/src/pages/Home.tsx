import { useEffect, useState } from "preact/hooks";
import { api, ApiError } from "../api";
import { Alert } from "../components";
import { useT } from "../context";
import type { Key } from "../i18n";
import { currentClaims } from "../session";

interface Me {
  role: string;
  student_no?: string | null;
  email?: string | null;
  name?: string | null;
}

export function HomePage() {
  const t = useT();
  const claims = currentClaims();
  const [me, setMe] = useState<Me | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    api<Me>("/api/identity/me")
      .then(setMe)
      .catch((e) => setError(e instanceof ApiError ? e.detail : String(e)));
  }, []);

  const role = claims ? t(`role_${claims.role}` as Key) : "";
  const who = me?.name ?? me?.email ?? claims?.student_no ?? claims?.sub ?? "";
  return (
    <>
      <h1>{t("welcome")}</h1>
      {error && <Alert kind="error">{t("error", { detail: error })}</Alert>}
      <p>{t("signedInAs", { who: `${who} (${role})` })}</p>
    </>
  );
}
