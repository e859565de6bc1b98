import { useState } from "preact/hooks";
import { api, ApiError } from "../api";
import { Alert, Field } from "../components";
import { useNavigate, useT } from "../context";

export function ActivatePage() {
  const t = useT();
  const navigate = useNavigate();
  const token = new URLSearchParams(location.search).get("token");
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [email, setEmail] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function onSubmit(event: Event) {
    event.preventDefault();
    if (!password) return setError(t("required"));
    if (password !== confirm) return setError(t("passwordsDiffer"));
    setBusy(true);
    setError(null);
    try {
      const answer = await api<{ university_email: string }>("/api/identity/accounts/activate", {
        method: "POST",
        body: { token, password },
        auth: false,
      });
      setEmail(answer.university_email);
    } catch (e) {
      setError(e instanceof ApiError ? e.detail : t("error", { detail: String(e) }));
    } finally {
      setBusy(false);
    }
  }

  if (!token) return <Alert kind="error">{t("missingToken")}</Alert>;
  return (
    <>
      <h1>{t("activateTitle")}</h1>
      {email ? (
        <>
          <Alert kind="success">{t("activated", { email })}</Alert>
          <button type="button" onClick={() => navigate("/login")}>{t("goToSignIn")}</button>
        </>
      ) : (
        <form class="card" onSubmit={onSubmit} noValidate>
          <p>{t("activateHelp")}</p>
          {error && <Alert kind="error">{error}</Alert>}
          <Field id="new-password" label={t("newPassword")} type="password" value={password}
            autocomplete="new-password" required onInput={setPassword} />
          <Field id="confirm-password" label={t("confirmPassword")} type="password" value={confirm}
            autocomplete="new-password" required onInput={setConfirm} />
          <button type="submit" disabled={busy}>{busy ? t("working") : t("activate")}</button>
        </form>
      )}
    </>
  );
}
