import { useState } from "preact/hooks";
import { api, ApiError } from "../api";
import { Alert, Field } from "../components";
import { useNavigate, useT } from "../context";
import { currentClaims, signIn } from "../session";

interface TokenOut {
  access_token: string;
}

const DOB = /^(0[1-9]|[12]\d|3[01])\/(0[1-9]|1[0-2])\/\d{4}$/;

export function homeFor(role: string | undefined): string {
  return role === "student" ? "/me" : "/staff";
}

export function LoginPage() {
  const t = useT();
  const navigate = useNavigate();
  const [jupas, setJupas] = useState({ appNo: "", last: "", first: "", dob: "" });
  const [account, setAccount] = useState({ email: "", password: "", totp: "" });
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [failure, setFailure] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(path: string, body: Record<string, string>) {
    setBusy(true);
    setFailure(null);
    try {
      const answer = await api<TokenOut>(path, { method: "POST", body, auth: false });
      signIn(answer.access_token);
      navigate(homeFor(currentClaims()?.role));
    } catch (e) {
      setFailure(e instanceof ApiError && e.status < 500 ? t("accessDenied") : t("error", { detail: String(e) }));
    } finally {
      setBusy(false);
    }
  }

  function onJupas(event: Event) {
    event.preventDefault();
    const found: Record<string, string> = {};
    if (!/^\d{8}$/.test(jupas.appNo.trim())) found.appNo = t("appNoFormat");
    if (!jupas.last.trim()) found.last = t("required");
    if (!jupas.first.trim()) found.first = t("required");
    if (!DOB.test(jupas.dob.trim())) found.dob = t("dobFormat");
    setErrors(found);
    if (Object.keys(found).length === 0) {
      void submit("/api/identity/sessions/jupas", {
        jupas_app_no: jupas.appNo.trim(),
        last_name: jupas.last,
        first_name: jupas.first,
        date_of_birth: jupas.dob.trim(),
      });
    }
  }

  function onAccount(event: Event) {
    event.preventDefault();
    const found: Record<string, string> = {};
    if (!account.email.trim()) found.email = t("required");
    if (!account.password) found.password = t("required");
    setErrors(found);
    if (Object.keys(found).length === 0) {
      const body: Record<string, string> = { email: account.email.trim(), password: account.password };
      if (account.totp.trim()) body.totp = account.totp.trim();
      void submit("/api/identity/sessions", body);
    }
  }

  return (
    <>
      <h1>{t("signIn")}</h1>
      {failure && <Alert kind="error">{failure}</Alert>}
      <div class="columns">
        <form class="card" onSubmit={onJupas} noValidate aria-labelledby="jupas-heading">
          <h2 id="jupas-heading">{t("signInJupas")}</h2>
          <p>{t("signInJupasHelp")}</p>
          <Field id="jupas-app-no" label={t("jupasAppNo")} value={jupas.appNo} inputMode="numeric"
            error={errors.appNo} required onInput={(v) => setJupas({ ...jupas, appNo: v })} />
          <Field id="last-name" label={t("lastName")} value={jupas.last} autocomplete="family-name"
            error={errors.last} required onInput={(v) => setJupas({ ...jupas, last: v })} />
          <Field id="first-name" label={t("firstName")} value={jupas.first} autocomplete="given-name"
            error={errors.first} required onInput={(v) => setJupas({ ...jupas, first: v })} />
          <Field id="dob" label={t("dateOfBirth")} value={jupas.dob} autocomplete="bday"
            error={errors.dob} required onInput={(v) => setJupas({ ...jupas, dob: v })} />
          <button type="submit" disabled={busy}>{busy ? t("working") : t("signIn")}</button>
        </form>
        <form class="card" onSubmit={onAccount} noValidate aria-labelledby="account-heading">
          <h2 id="account-heading">{t("signInAccount")}</h2>
          <p>{t("signInAccountHelp")}</p>
          <Field id="email" label={t("email")} type="email" value={account.email} autocomplete="username"
            inputMode="email" error={errors.email} required
            onInput={(v) => setAccount({ ...account, email: v })} />
          <Field id="password" label={t("password")} type="password" value={account.password}
            autocomplete="current-password" error={errors.password} required
            onInput={(v) => setAccount({ ...account, password: v })} />
          <Field id="totp" label={t("totp")} value={account.totp} inputMode="numeric"
            autocomplete="one-time-code" onInput={(v) => setAccount({ ...account, totp: v })} />
          <button type="submit" disabled={busy}>{busy ? t("working") : t("signIn")}</button>
        </form>
      </div>
    </>
  );
}
