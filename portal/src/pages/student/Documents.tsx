// Identity and visa documents and the card photo: upload with progress, the list of
// uploads with their states, and the automatic photo verdict.
import { useContext, useRef, useState } from "preact/hooks";
import { api, ApiError } from "../../api";
import { Alert } from "../../components";
import { App, useT } from "../../context";
import type { Key } from "../../i18n";
import { uploadFile } from "../../upload";
import { Announcer, errorDetail, SelectField, useDates, usePoll } from "./shared";
import type { DocumentRow, MyRegistration, PhotoRow } from "./types";

export const DOCUMENT_TYPES = [
  "hk_permanent_id_card", "hk_id_card", "passport", "document_of_identity", "exit_entry_permit",
  "student_visa", "dependant_visa", "deed_poll", "supporting_document", "parent_consent_form",
  "tuition_receipt",
] as const;

const PHOTO_PROBLEMS = [
  "file_too_small", "file_too_large", "resolution_too_low", "not_portrait_4_5", "too_dark",
  "too_bright", "blurred", "no_face", "several_faces", "face_too_small", "face_too_large",
  "face_off_centre",
];

interface Reason {
  code: string;
  message: string;
}

type Verdict = { passed: true; photo: PhotoRow } | { passed: false; reasons: Reason[] };

export function DocumentsPage() {
  const t = useT();
  const { language } = useContext(App);
  const { moment } = useDates();
  const [mine, setMine] = useState<MyRegistration | null>(null);
  const [documents, setDocuments] = useState<DocumentRow[] | null>(null);
  const [photos, setPhotos] = useState<PhotoRow[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [announcement, setAnnouncement] = useState("");
  const seen = useRef<Map<string, string> | null>(null);

  const label = (docType: string) => t(`me_doc_${docType}` as Key);

  async function refresh() {
    try {
      const [reg, docs, pics] = await Promise.all([
        api<MyRegistration>("/api/registration/me").catch(() => null),
        api<DocumentRow[]>("/api/documents/me/documents"),
        api<PhotoRow[]>("/api/documents/me/photos"),
      ]);
      // Tell screen-reader users when a reviewer changed the state of an upload.
      const states = new Map<string, string>();
      docs.forEach((d) => states.set(d.id, d.status));
      pics.forEach((p) => states.set(p.id, p.status));
      const changes: string[] = [];
      if (seen.current) {
        for (const d of docs) {
          const before = seen.current.get(d.id);
          if (before && before !== d.status) {
            changes.push(`${label(d.doc_type)}: ${t(`me_docStatus_${d.status}` as Key)}`);
          }
        }
        for (const p of pics) {
          const before = seen.current.get(p.id);
          if (before && before !== p.status) {
            changes.push(`${t("me_photoTitle")}: ${t(`me_docStatus_${p.status}` as Key)}`);
          }
        }
      }
      seen.current = states;
      if (changes.length) setAnnouncement(changes.join(". "));
      setMine(reg);
      setDocuments(docs);
      setPhotos(pics);
      setError(null);
    } catch (e) {
      setError(errorDetail(e));
    }
  }
  usePoll(refresh, [language]);

  // What the checklist still asks for, first in the list of types.
  const wanted = (mine?.checklist ?? [])
    .filter((i) => (i.state === "missing" || i.state === "rejected") && (i.accepts?.length ?? 0) > 0)
    .flatMap((i) => i.accepts ?? []);
  const ordered = [...new Set([...wanted, ...DOCUMENT_TYPES])];
  const current = (documents ?? []).filter((d) => d.status !== "superseded");
  const history = (documents ?? []).filter((d) => d.status === "superseded");

  return (
    <>
      <h1>{t("me_documentsTitle")}</h1>
      <Announcer message={announcement} />
      {error && <Alert kind="error">{t("error", { detail: error })}</Alert>}
      {wanted.length > 0 && (
        <p>{t("me_documentsWanted", { list: [...new Set(wanted)].map(label).join(language === "en" ? ", " : "、") })}</p>
      )}
      <div class="columns">
        <DocumentUpload types={ordered} wanted={wanted} onDone={refresh} />
        <PhotoUpload onDone={refresh} />
      </div>

      <h2>{t("me_myUploads")}</h2>
      {documents && current.length === 0 && <p>{t("me_noUploads")}</p>}
      {current.length > 0 && (
        <table class="checklist uploads" data-testid="documents-table">
          <thead>
            <tr>
              <th scope="col">{t("me_docType")}</th>
              <th scope="col">{t("me_fileName")}</th>
              <th scope="col">{t("me_uploadedAt")}</th>
              <th scope="col">{t("state")}</th>
            </tr>
          </thead>
          <tbody>
            {current.map((d) => (
              <tr key={d.id} data-doc-id={d.id} data-doc-type={d.doc_type} data-status={d.status}>
                <th scope="row">{label(d.doc_type)} <span class="hint">{t("me_versionN", { n: String(d.version) })}</span></th>
                <td>{d.filename ?? "—"}</td>
                <td>{moment(d.uploaded_at)}</td>
                <td>
                  <span class={`state state-${d.status}`}>{t(`me_docStatus_${d.status}` as Key)}</span>
                  {d.reason && <p class="reason">{t("rejectedBecause", { reason: d.reason })}</p>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {photos.length > 0 && (
        <>
          <h3>{t("me_myPhotos")}</h3>
          <ul class="plain-list">
            {photos.map((p) => (
              <li key={p.id} data-photo-status={p.status}>
                {t("me_versionN", { n: String(p.version) })} · {moment(p.submitted_at)} ·{" "}
                <span class={`state state-${p.status}`}>{t(`me_docStatus_${p.status}` as Key)}</span>
                {p.reason && <span class="reason"> — {t("rejectedBecause", { reason: p.reason })}</span>}
              </li>
            ))}
          </ul>
        </>
      )}
      {history.length > 0 && (
        <details>
          <summary>{t("me_earlierVersions", { n: String(history.length) })}</summary>
          <ul class="plain-list">
            {history.map((d) => (
              <li key={d.id}>
                {label(d.doc_type)} · {t("me_versionN", { n: String(d.version) })} · {moment(d.uploaded_at)}
              </li>
            ))}
          </ul>
        </details>
      )}
    </>
  );
}

function ProgressBar(props: { id: string; percent: number | null; label: string }) {
  const t = useT();
  if (props.percent === null) return null;
  return (
    <div class="progress-wrap">
      <div
        class="progress"
        id={props.id}
        role="progressbar"
        aria-label={props.label}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={props.percent}
        aria-valuetext={t("me_percent", { n: String(props.percent) })}
      >
        <div class="progress-fill" style={{ width: `${props.percent}%` }} />
      </div>
      <span class="hint" aria-hidden="true">{t("me_percent", { n: String(props.percent) })}</span>
    </div>
  );
}

function refusal(e: unknown, t: ReturnType<typeof useT>): string {
  if (e instanceof ApiError) {
    if (e.status === 409) return t("me_notAdmittedYet");
    if (e.status === 413) return t("me_fileTooLarge");
    if (e.status === 415) return `${t("me_fileWrongType")} (${e.detail})`;
    if (e.status === 503) return t("me_uploadBusy");
    return e.detail;
  }
  return String(e);
}

function DocumentUpload(props: { types: string[]; wanted: string[]; onDone: () => Promise<void> }) {
  const t = useT();
  const [docType, setDocType] = useState("");
  const [file, setFile] = useState<File | null>(null);
  const [percent, setPercent] = useState<number | null>(null);
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState<{ type?: string; file?: string }>({});
  const [result, setResult] = useState<{ kind: "success" | "error"; text: string } | null>(null);
  const input = useRef<HTMLInputElement>(null);
  const chosen = docType || props.wanted[0] || "";

  async function onSubmit(event: Event) {
    event.preventDefault();
    const found: { type?: string; file?: string } = {};
    if (!chosen) found.type = t("required");
    if (!file) found.file = t("me_chooseFile");
    setErrors(found);
    if (found.type || found.file || !file) return;
    setBusy(true);
    setResult(null);
    try {
      await uploadFile<DocumentRow>("/api/documents/me/documents", file, { doc_type: chosen }, setPercent);
      setResult({ kind: "success", text: t("me_uploadDone", { name: file.name }) });
      setFile(null);
      if (input.current) input.current.value = "";
      await props.onDone();
    } catch (e) {
      setResult({ kind: "error", text: refusal(e, t) });
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="card" onSubmit={onSubmit} noValidate aria-labelledby="doc-upload-heading">
      <h2 id="doc-upload-heading">{t("me_uploadDocument")}</h2>
      <SelectField id="doc-type" label={t("me_docType")} value={chosen} placeholder={t("me_choose")}
        error={errors.type} onChange={setDocType}
        options={props.types.map((d) => ({ value: d, label: t(`me_doc_${d}` as Key) }))} />
      <div class="field">
        <label for="doc-file">{t("me_fileLabel")}</label>
        <p class="hint" id="doc-file-hint">{t("me_documentFileHint")}</p>
        <input ref={input} id="doc-file" type="file" accept=".pdf,.jpg,.jpeg,.png,application/pdf,image/jpeg,image/png"
          aria-describedby={errors.file ? "doc-file-hint doc-file-error" : "doc-file-hint"}
          aria-invalid={errors.file ? "true" : undefined}
          onChange={(e) => setFile((e.currentTarget as HTMLInputElement).files?.[0] ?? null)} />
        {errors.file && <p class="field-error" id="doc-file-error">{errors.file}</p>}
      </div>
      <ProgressBar id="doc-progress" percent={percent} label={t("me_uploadProgress")} />
      {result && <Alert kind={result.kind}>{result.text}</Alert>}
      <button type="submit" disabled={busy}>{busy ? t("me_uploading") : t("me_upload")}</button>
    </form>
  );
}

function PhotoUpload(props: { onDone: () => Promise<void> }) {
  const t = useT();
  const [file, setFile] = useState<File | null>(null);
  const [percent, setPercent] = useState<number | null>(null);
  const [busy, setBusy] = useState(false);
  const [fileError, setFileError] = useState<string | null>(null);
  const [verdict, setVerdict] = useState<Verdict | null>(null);
  const [failure, setFailure] = useState<string | null>(null);
  const input = useRef<HTMLInputElement>(null);

  async function onSubmit(event: Event) {
    event.preventDefault();
    if (!file) return setFileError(t("me_chooseFile"));
    setFileError(null);
    setBusy(true);
    setVerdict(null);
    setFailure(null);
    try {
      const answer = await uploadFile<PhotoRow>("/api/documents/me/photo", file, {}, setPercent);
      setVerdict({ passed: true, photo: answer.body });
      setFile(null);
      if (input.current) input.current.value = "";
      await props.onDone();
    } catch (e) {
      const detail = e instanceof ApiError ? (e.body as { detail?: { code?: string; reasons?: Reason[] } } | null)?.detail : null;
      if (e instanceof ApiError && e.status === 422 && detail?.code === "photo_rejected") {
        setVerdict({ passed: false, reasons: detail.reasons ?? [] });
      } else {
        setFailure(refusal(e, t));
      }
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="card" onSubmit={onSubmit} noValidate aria-labelledby="photo-heading">
      <h2 id="photo-heading">{t("me_photoTitle")}</h2>
      <p class="hint">{t("me_photoHelp")}</p>
      <div class="field">
        <label for="photo-file">{t("me_photoFileLabel")}</label>
        <input ref={input} id="photo-file" type="file" accept=".jpg,.jpeg,.png,image/jpeg,image/png"
          aria-invalid={fileError ? "true" : undefined}
          aria-describedby={fileError ? "photo-file-error" : undefined}
          onChange={(e) => setFile((e.currentTarget as HTMLInputElement).files?.[0] ?? null)} />
        {fileError && <p class="field-error" id="photo-file-error">{fileError}</p>}
      </div>
      <ProgressBar id="photo-progress" percent={percent} label={t("me_photoProgress")} />
      {failure && <Alert kind="error">{failure}</Alert>}
      {verdict && (
        <div class={`verdict alert ${verdict.passed ? "alert-success" : "alert-error"}`}
          role={verdict.passed ? "status" : "alert"} data-verdict={verdict.passed ? "passed" : "failed"}>
          <p><strong>{verdict.passed ? t("me_photoPassed") : t("me_photoFailed")}</strong></p>
          {!verdict.passed && (
            <ul>
              {verdict.reasons.map((r) => (
                <li key={r.code} data-reason={r.code}>
                  {PHOTO_PROBLEMS.includes(r.code) ? t(`me_photo_${r.code}` as Key) : r.code}
                  <br />
                  <span class="hint" lang="en">{r.message}</span>
                </li>
              ))}
            </ul>
          )}
          {!verdict.passed && <p>{t("me_photoRetake")}</p>}
        </div>
      )}
      <button type="submit" disabled={busy}>{busy ? t("me_uploading") : t("me_uploadPhoto")}</button>
    </form>
  );
}
