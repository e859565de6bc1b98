import { useState } from "preact/hooks";
import { api, ApiError } from "../api";
import { Alert, Field } from "../components";
import { useNavigate, useT } from "../context";
import { signIn } from "../session";

interface ActivatedOut {
  university_email: string;
  // The session the activation starts; absent if the service could not start one.
  access_token: string | null;
}

export function ActivatePage() {
  const t = useT();
  const navigate = useNavigate();
  const token = new URLSearchParams(location.search).get("token");
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<{ email: string; signedIn: boolean } | null>(null);
  const [busy, setBusy] = useState(false);

  async function onSubmit(event: Event) {
    event.preventDefault();
    if (!password) return setError(t("required"));
    if (password !== confirm) return setError(t("passwordsDiffer"));
    setBusy(true);
    setError(null);
    try {
      const answer = await api<ActivatedOut>("/api/identity/accounts/activate", {
        method: "POST",
        body: { token, password },
        auth: false,
      });
      if (answer.access_token) signIn(answer.access_token);
      setDone({ email: answer.university_email, signedIn: Boolean(answer.access_token) });
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
      {done?.signedIn ? (
        <>
          <Alert kind="success">{t("activatedSignedIn", { email: done.email })}</Alert>
          <button type="button" onClick={() => navigate("/me")}>{t("continueToRegistration")}</button>
        </>
      ) : done ? (
        <>
          <Alert kind="success">{t("activated", { email: done.email })}</Alert>
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
