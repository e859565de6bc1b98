// The registration form: inline checks, drafts, a confirmation step, one submission,
// then a read-only record of what was submitted.
import { useRef, useState } from "preact/hooks";
import { api, ApiError } from "../../api";
import { Alert, Field } from "../../components";
import { useT } from "../../context";
import type { Key } from "../../i18n";
import {
  changedParticulars,
  type Errors,
  FIELD_ORDER,
  type FieldError,
  type FieldName,
  type FormValues,
  fromForm,
  GENDERS,
  RESIDENCIES,
  serverErrors,
  toPayload,
  TRAVEL_DOCUMENTS,
  validate,
} from "./formRules";
import { AppLink, CheckField, errorDetail, SelectField, SOON_MS, useDates, usePoll } from "./shared";
import type { MyRegistration } from "./types";

const id = (name: FieldName) => `f-${name}`;

export function FormPage() {
  const t = useT();
  const { moment } = useDates();
  const [mine, setMine] = useState<MyRegistration | null>(null);
  const [values, setValues] = useState<FormValues | null>(null);
  const [errors, setErrors] = useState<Errors>({});
  const [step, setStep] = useState<"edit" | "confirm">("edit");
  const [dirty, setDirty] = useState(false);
  const [notice, setNotice] = useState<{ kind: "success" | "error" | "info"; text: string } | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const summaryRef = useRef<HTMLDivElement>(null);
  const headingRef = useRef<HTMLHeadingElement>(null);
  const dirtyRef = useRef(false);
  dirtyRef.current = dirty;
  const loaded = useRef(false);

  // Loaded once and kept fresh (another tab may submit); unsaved edits are never overwritten.
  usePoll(async () => {
    try {
      const next = await api<MyRegistration>("/api/registration/me");
      setMine(next);
      setLoadError(null);
      if (!loaded.current || (!dirtyRef.current && next.submitted)) {
        loaded.current = true;
        setValues(fromForm(next.form));
      }
    } catch (e) {
      const notYet = e instanceof ApiError && e.status === 404;
      setLoadError(notYet ? t("me_formNotYet") : errorDetail(e));
      if (notYet && !loaded.current) return SOON_MS;
    }
  });

  const prefill = mine?.prefill ?? {};
  const message = (e: FieldError | undefined) =>
    !e ? null : "key" in e ? t(e.key) : e.text;

  function set<K extends FieldName>(name: K, value: FormValues[K]) {
    if (!values) return;
    const next = { ...values, [name]: value };
    setValues(next);
    setDirty(true);
    setNotice(null);
    // An error shown next to a field goes away as soon as the field is right.
    if (errors[name]) {
      const again = validate(next, "draft", prefill)[name];
      setErrors({ ...errors, [name]: again });
    }
  }

  function check(name: FieldName) {
    if (!values) return;
    setErrors({ ...errors, [name]: validate(values, "draft", prefill)[name] });
  }

  function showProblems(found: Errors) {
    setErrors(found);
    setNotice(null);
    requestAnimationFrame(() => summaryRef.current?.focus());
  }

  async function saveDraft() {
    if (!values) return;
    const found = validate(values, "draft", prefill);
    if (Object.values(found).some(Boolean)) return showProblems(found);
    setBusy(true);
    try {
      const saved = await api<MyRegistration>("/api/registration/me/form", {
        method: "PUT",
        body: toPayload(values),
      });
      setMine(saved);
      setValues(fromForm(saved.form));
      setErrors({});
      setDirty(false);
      setNotice({ kind: "success", text: t("me_draftSaved", { time: new Date().toLocaleTimeString() }) });
    } catch (e) {
      if (e instanceof ApiError && e.status === 422) showProblems(serverErrors(e.body));
      else setNotice({ kind: "error", text: t("error", { detail: errorDetail(e) }) });
    } finally {
      setBusy(false);
    }
  }

  function review(event: Event) {
    event.preventDefault();
    if (!values) return;
    const found = validate(values, "submit", prefill);
    if (Object.values(found).some(Boolean)) return showProblems(found);
    setErrors({});
    setStep("confirm");
    requestAnimationFrame(() => headingRef.current?.focus());
  }

  async function submit() {
    if (!values) return;
    setBusy(true);
    try {
      const done = await api<MyRegistration>("/api/registration/me/submit", {
        method: "POST",
        body: toPayload(values),
      });
      setMine(done);
      setValues(fromForm(done.form));
      setDirty(false);
      setNotice({ kind: "success", text: t("me_formSubmittedNow") });
      requestAnimationFrame(() => headingRef.current?.focus());
    } catch (e) {
      if (e instanceof ApiError && e.status === 422) {
        setStep("edit");
        showProblems(serverErrors(e.body));
      } else if (e instanceof ApiError && e.status === 409) {
        setMine(await api<MyRegistration>("/api/registration/me"));
        setNotice({ kind: "info", text: t("me_formAlreadySubmitted") });
      } else {
        setNotice({ kind: "error", text: t("error", { detail: errorDetail(e) }) });
      }
    } finally {
      setBusy(false);
    }
  }

  if (!mine || !values) {
    return (
      <>
        <h1>{t("me_formTitle")}</h1>
        {loadError ? <Alert kind="info">{loadError}</Alert> : <p>{t("me_loading")}</p>}
      </>
    );
  }
  const stale = loadError && <Alert kind="error">{t("error", { detail: loadError })}</Alert>;

  if (mine.submitted) {
    return (
      <>
        <h1 ref={headingRef} tabIndex={-1}>{t("me_formTitle")}</h1>
        {stale}
        {notice && <Alert kind={notice.kind}>{notice.text}</Alert>}
        <p class="status-line" data-form-state="submitted">
          {t("me_formSubmittedOn", { date: mine.submitted_at ? moment(mine.submitted_at) : "" })}
        </p>
        <p>{t("me_formReadOnly")} <AppLink href="/me/documents">{t("me_goToDocuments")}</AppLink></p>
        <Summary values={fromForm(mine.form)} />
      </>
    );
  }

  if (step === "confirm") {
    return (
      <>
        <h1 ref={headingRef} tabIndex={-1}>{t("me_confirmTitle")}</h1>
        {notice && <Alert kind={notice.kind}>{notice.text}</Alert>}
        <p>{t("me_confirmHelp")}</p>
        <Summary values={values} />
        <div class="actions">
          <button type="button" class="secondary" onClick={() => setStep("edit")} disabled={busy}>
            {t("me_backToEdit")}
          </button>
          <button type="button" onClick={submit} disabled={busy}>
            {busy ? t("working") : t("me_submitForm")}
          </button>
        </div>
      </>
    );
  }

  const problems = FIELD_ORDER.filter((n) => errors[n]);
  const hk = values.residency === "hk_permanent" || values.residency === "hk_non_permanent";
  const travel = values.residency === "hk_non_permanent" || values.residency === "non_local";
  const changed = changedParticulars(values, prefill);
  const text = (name: FieldName, extra: Partial<Parameters<typeof Field>[0]> = {}) => (
    <Field id={id(name)} label={t(`me_f_${name}` as Key)} value={values[name] as string}
      error={message(errors[name])} onInput={(v) => set(name, v)} onBlur={() => check(name)} {...extra} />
  );

  return (
    <>
      <h1 ref={headingRef} tabIndex={-1}>{t("me_formTitle")}</h1>
      {stale}
      <p>{t("me_formHelp")}</p>
      {notice && <Alert kind={notice.kind}>{notice.text}</Alert>}
      {(problems.length > 0 || errors._form) && (
        <div class="alert alert-error error-summary" role="alert" tabIndex={-1} ref={summaryRef}>
          <p><strong>{t("me_fixProblems", { count: String(problems.length) })}</strong></p>
          {errors._form && <p>{message(errors._form)}</p>}
          <ul>
            {problems.map((n) => (
              <li key={n}>
                <a href={`#${id(n)}`} onClick={(e) => {
                  e.preventDefault();
                  document.getElementById(id(n))?.focus();
                }}>
                  {t(`me_f_${n}` as Key)}: {message(errors[n])}
                </a>
              </li>
            ))}
          </ul>
        </div>
      )}
      <form class="reg-form" onSubmit={review} noValidate>
        <fieldset>
          <legend>{t("me_sectionPersonal")}</legend>
          {text("surname", { autocomplete: "family-name", required: true })}
          {text("given_names", { autocomplete: "given-name", required: true })}
          {text("chinese_name")}
          <SelectField id={id("gender")} label={t("me_f_gender")} value={values.gender} required
            placeholder={t("me_choose")} error={message(errors.gender)}
            options={GENDERS.map((g) => ({ value: g, label: t(`me_gender_${g}` as Key) }))}
            onChange={(v) => set("gender", v)} />
          {text("date_of_birth", { type: "date", autocomplete: "bday", required: true })}
          {text("nationality", { hint: t("me_nationalityHint"), required: true })}
          {changed.length > 0 && (
            <>
              <CheckField id={id("particulars_changed")} label={t("me_f_particulars_changed")}
                hint={t("me_particularsChangedHint")} checked={values.particulars_changed}
                error={message(errors.particulars_changed)}
                onChange={(v) => set("particulars_changed", v)} />
              {values.particulars_changed && text("change_reason", { required: true })}
            </>
          )}
        </fieldset>
        <fieldset>
          <legend>{t("me_sectionIdentity")}</legend>
          <SelectField id={id("residency")} label={t("me_f_residency")} value={values.residency} required
            placeholder={t("me_choose")} error={message(errors.residency)} hint={t("me_residencyHint")}
            options={RESIDENCIES.map((r) => ({ value: r, label: t(`me_residency_${r}` as Key) }))}
            onChange={(v) => set("residency", v)} />
          {hk && text("hkid_number", { hint: t("me_hkidHint"), required: true })}
          {travel && (
            <>
              <SelectField id={id("travel_document_type")} label={t("me_f_travel_document_type")}
                value={values.travel_document_type} required placeholder={t("me_choose")}
                error={message(errors.travel_document_type)}
                options={TRAVEL_DOCUMENTS.map((d) => ({ value: d, label: t(`me_doc_${d}` as Key) }))}
                onChange={(v) => set("travel_document_type", v)} />
              {text("travel_document_number", { required: true })}
            </>
          )}
          {values.residency === "hk_non_permanent" && (
            <CheckField id={id("dependant_visa")} label={t("me_f_dependant_visa")}
              checked={values.dependant_visa} onChange={(v) => set("dependant_visa", v)} />
          )}
        </fieldset>
        <fieldset>
          <legend>{t("me_sectionContact")}</legend>
          {text("mobile", { type: "tel", autocomplete: "tel", required: true })}
          {text("personal_email", { type: "email", autocomplete: "email", inputMode: "email", required: true })}
          {text("addr_line1", { autocomplete: "address-line1", required: true })}
          {text("addr_line2", { autocomplete: "address-line2" })}
          {text("addr_district")}
          {text("addr_country", { autocomplete: "country-name", required: true })}
        </fieldset>
        <fieldset>
          <legend>{t("me_sectionEmergency")}</legend>
          {text("ec_name", { required: true })}
          {text("ec_relationship", { required: true })}
          {text("ec_phone", { type: "tel", required: true })}
        </fieldset>
        <CheckField id={id("declaration")} label={t("me_f_declaration")} checked={values.declaration}
          error={message(errors.declaration)} onChange={(v) => set("declaration", v)} />
        <p class="hint" aria-live="polite">{dirty ? t("me_unsavedChanges") : ""}</p>
        <div class="actions">
          <button type="button" class="secondary" onClick={saveDraft} disabled={busy}>
            {busy ? t("working") : t("me_saveDraft")}
          </button>
          <button type="submit" disabled={busy}>{t("me_reviewForm")}</button>
        </div>
      </form>
    </>
  );
}

/** What will be (or was) submitted, as a list of labelled values. */
function Summary(props: { values: FormValues }) {
  const t = useT();
  const { day } = useDates();
  const v = props.values;
  const shown = (name: FieldName): string => {
    const value = v[name];
    if (typeof value === "boolean") return value ? t("me_yes") : t("me_no");
    if (!value) return "—";
    if (name === "date_of_birth" && /^\d{4}-\d{2}-\d{2}$/.test(value)) return day(value);
    if (name === "gender") return t(`me_gender_${value}` as Key);
    if (name === "residency") return t(`me_residency_${value}` as Key);
    if (name === "travel_document_type") return t(`me_doc_${value}` as Key);
    return value;
  };
  const hk = v.residency === "hk_permanent" || v.residency === "hk_non_permanent";
  const travel = v.residency === "hk_non_permanent" || v.residency === "non_local";
  const names = FIELD_ORDER.filter((n) => {
    if (n === "hkid_number") return hk;
    if (n === "travel_document_type" || n === "travel_document_number") return travel;
    if (n === "dependant_visa") return v.residency === "hk_non_permanent";
    if (n === "change_reason") return v.particulars_changed;
    return true;
  });
  return (
    <dl class="summary" data-testid="form-summary">
      {names.map((n) => (
        <div key={n} class="summary-row">
          <dt>{t(`me_f_${n}` as Key)}</dt>
          <dd data-field={n}>{shown(n)}</dd>
        </div>
      ))}
    </dl>
  );
}
