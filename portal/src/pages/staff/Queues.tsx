// The document and photo review queues: a filtered list, and the item opened with
// its file beside the actions (verify / reject, approve / reject).
import { useEffect, useState } from "preact/hooks";
import { api } from "../../api";
import { Alert } from "../../components";
import { useT } from "../../context";
import { fetchBlob } from "../../download";
import type { Key } from "../../i18n";
import { Announce, Cell, describe, type Said, said, Say, useFormat } from "./ui";

interface Checks {
  faces: number;
  brightness: number;
  sharpness: number;
  width: number;
  height: number;
}

interface QueueItem {
  id: string;
  kind: "document" | "photo";
  student_no: string;
  doc_type: string | null;
  version: number;
  status: string;
  content_type: string;
  size_bytes: number;
  submitted_at: string;
  age: { hours: number; working_days: number; overdue: boolean };
  content_path: string;
  filename?: string | null;
  checks?: Checks | null;
}

interface QueueOut {
  count: number;
  overdue: number;
  items: QueueItem[];
}

export const DOC_TYPES = [
  "hk_permanent_id_card",
  "hk_id_card",
  "passport",
  "document_of_identity",
  "exit_entry_permit",
  "student_visa",
  "dependant_visa",
  "deed_poll",
  "supporting_document",
  "parent_consent_form",
  "tuition_receipt",
] as const;

// These always carry an expiry date: the documents service asks for it.
const EXPIRING = new Set(["passport", "document_of_identity", "exit_entry_permit", "student_visa", "dependant_visa"]);

const STATUSES = {
  document: ["pending", "verified", "rejected", "superseded"],
  photo: ["pending", "approved", "rejected", "superseded"],
} as const;

function useDocTypeLabel(): (type: string | null) => string {
  const t = useT();
  return (type) => (type ? t(`doc_${type}` as Key) : t("photo"));
}

/** The file, read with the staff token and shown from a blob: URL. */
function FileView(props: { item: QueueItem; label: string }) {
  const t = useT();
  const [url, setUrl] = useState<string | null>(null);
  const [error, setError] = useState<Said | null>(null);
  useEffect(() => {
    let made: string | null = null;
    let live = true;
    setUrl(null);
    setError(null);
    fetchBlob(props.item.content_path)
      .then((blob) => {
        if (!live) return;
        made = URL.createObjectURL(blob);
        setUrl(made);
      })
      .catch((e) => live && setError(said("error", { detail: describe(e) })));
    return () => {
      live = false;
      if (made) URL.revokeObjectURL(made);
    };
  }, [props.item.id]);

  async function openInTab() {
    try {
      const link = await api<{ url: string }>(
        `/api/documents/${props.item.kind}s/${props.item.id}/content-link`,
        { method: "POST" },
      );
      window.open(link.url, "_blank", "noopener");
    } catch (e) {
      setError(said("error", { detail: describe(e) }));
    }
  }

  if (error) return <Alert kind="error"><Say it={error} /></Alert>;
  if (!url) return <p>{t("loadingFile")}</p>;
  return (
    <div class="file-view">
      {props.item.content_type === "application/pdf" ? (
        <iframe class="viewer" src={url} title={props.label} data-file={props.item.id} />
      ) : (
        <img class="viewer" src={url} alt={props.label} data-file={props.item.id} />
      )}
      <button type="button" class="secondary" onClick={() => void openInTab()}>
        {t("openInTab")}
      </button>
    </div>
  );
}

function ReasonForm(props: { id: string; busy: boolean; button: string; onReject: (reason: string) => void }) {
  const t = useT();
  const [reason, setReason] = useState("");
  const [problem, setProblem] = useState<Said | null>(null);
  function onSubmit(event: Event) {
    event.preventDefault();
    if (!reason.trim()) return setProblem(said("reasonRequired"));
    setProblem(null);
    props.onReject(reason.trim());
  }
  return (
    <form onSubmit={onSubmit} noValidate class="action">
      <div class="field">
        <label for={props.id}>{t("rejectReason")}</label>
        <p class="hint" id={`${props.id}-hint`}>{t("rejectReasonHint")}</p>
        <textarea id={props.id} rows={3} maxLength={500} value={reason} required
          aria-invalid={problem ? "true" : undefined}
          aria-describedby={problem ? `${props.id}-hint ${props.id}-error` : `${props.id}-hint`}
          onInput={(e) => setReason((e.currentTarget as HTMLTextAreaElement).value)} />
        {problem && <p class="field-error" id={`${props.id}-error`}><Say it={problem} /></p>}
      </div>
      <button type="submit" class="danger" disabled={props.busy}>{props.button}</button>
    </form>
  );
}

function DocumentActions(props: { item: QueueItem; onDone: (message: Said) => void }) {
  const t = useT();
  const [expiry, setExpiry] = useState("");
  const [expiryError, setExpiryError] = useState<Said | null>(null);
  const [error, setError] = useState<Said | null>(null);
  const [busy, setBusy] = useState(false);
  const needsExpiry = EXPIRING.has(props.item.doc_type ?? "");
  const what = {
    what: said(`doc_${props.item.doc_type}` as Key),
    student: props.item.student_no,
  };

  async function act(path: string, body: unknown, message: Said) {
    setBusy(true);
    setError(null);
    try {
      await api(`/api/documents/documents/${props.item.id}/${path}`, { method: "POST", body });
      props.onDone(message);
    } catch (e) {
      setError(said("error", { detail: describe(e) }));
    } finally {
      setBusy(false);
    }
  }

  function onVerify(event: Event) {
    event.preventDefault();
    if (needsExpiry && !expiry) return setExpiryError(said("expiryRequired"));
    setExpiryError(null);
    void act("verify", { expiry_date: expiry || null }, said("verifiedMessage", what));
  }

  return (
    <div class="actions">
      {error && <Alert kind="error"><Say it={error} /></Alert>}
      <form onSubmit={onVerify} noValidate class="action">
        <div class="field">
          <label for="expiry-date">
            {needsExpiry ? t("expiryDate") : t("expiryDateOptional")}
          </label>
          <p class="hint" id="expiry-hint">{t("expiryHint")}</p>
          <input id="expiry-date" type="date" value={expiry} required={needsExpiry}
            aria-invalid={expiryError ? "true" : undefined}
            aria-describedby={expiryError ? "expiry-hint expiry-error" : "expiry-hint"}
            onInput={(e) => setExpiry((e.currentTarget as HTMLInputElement).value)} />
          {expiryError && <p class="field-error" id="expiry-error"><Say it={expiryError} /></p>}
        </div>
        <button type="submit" disabled={busy}>{t("verify")}</button>
      </form>
      <ReasonForm id="reject-reason" busy={busy} button={t("reject")}
        onReject={(reason) => void act("reject", { reason }, said("rejectedMessage", what))} />
    </div>
  );
}

function PhotoActions(props: { item: QueueItem; onDone: (message: Said) => void }) {
  const t = useT();
  const [error, setError] = useState<Said | null>(null);
  const [busy, setBusy] = useState(false);
  const checks = props.item.checks;

  async function act(path: string, body: unknown, message: Said) {
    setBusy(true);
    setError(null);
    try {
      await api(`/api/documents/photos/${props.item.id}/${path}`, { method: "POST", body });
      props.onDone(message);
    } catch (e) {
      setError(said("error", { detail: describe(e) }));
    } finally {
      setBusy(false);
    }
  }

  return (
    <div class="actions">
      <h3>{t("photoChecks")}</h3>
      {checks ? (
        <dl class="figures" data-testid="photo-checks">
          <div><dt>{t("checkFaces")}</dt><dd>{checks.faces}</dd></div>
          <div><dt>{t("checkResolution")}</dt><dd>{`${checks.width} × ${checks.height}`}</dd></div>
          <div><dt>{t("checkBrightness")}</dt><dd>{checks.brightness}</dd></div>
          <div><dt>{t("checkSharpness")}</dt><dd>{checks.sharpness}</dd></div>
        </dl>
      ) : (
        <p>{t("checksUnknown")}</p>
      )}
      <p>{t("checksPassed")}</p>
      {error && <Alert kind="error"><Say it={error} /></Alert>}
      <button type="button" disabled={busy}
        onClick={() => void act("approve", undefined, said("approvedMessage", { student: props.item.student_no }))}>
        {t("approve")}
      </button>
      <ReasonForm id="photo-reject-reason" busy={busy} button={t("reject")}
        onReject={(reason) =>
          void act("reject", { reason }, said("photoRejectedMessage", { student: props.item.student_no }))} />
    </div>
  );
}

function Queue(props: { kind: "document" | "photo" }) {
  const t = useT();
  const typeLabel = useDocTypeLabel();
  const format = useFormat();
  const [filters, setFilters] = useState({ status: "pending", docType: "", studentNo: "" });
  const [applied, setApplied] = useState(filters);
  const [queue, setQueue] = useState<QueueOut | null>(null);
  const [error, setError] = useState<Said | null>(null);
  const [studentError, setStudentError] = useState<Said | null>(null);
  const [open, setOpen] = useState<QueueItem | null>(null);
  const [message, setMessage] = useState<Said | null>(null);
  const [reload, setReload] = useState(0);

  useEffect(() => {
    const query = new URLSearchParams({ kind: props.kind, status: applied.status, limit: "200" });
    if (applied.studentNo) query.set("student_no", applied.studentNo);
    if (applied.docType && props.kind === "document") query.set("doc_type", applied.docType);
    setError(null);
    api<QueueOut>(`/api/documents/queue?${query}`)
      .then(setQueue)
      .catch((e) => setError(said("error", { detail: describe(e) })));
  }, [applied, reload, props.kind]);

  useEffect(() => {
    // Keyboard and screen-reader users land on the opened item.
    if (open) document.getElementById("review-heading")?.focus();
  }, [open?.id]);

  function onFilter(event: Event) {
    event.preventDefault();
    const studentNo = filters.studentNo.trim();
    if (studentNo && !/^\d{8,10}$/.test(studentNo)) return setStudentError(said("studentNoFormat"));
    setStudentError(null);
    setOpen(null);
    setApplied({ ...filters, studentNo });
  }

  function done(text: Said) {
    setMessage(text);
    setOpen(null);
    setReload((n) => n + 1);
    // The reviewed item is gone: keep keyboard focus on what happened, not on the page.
    requestAnimationFrame(() => document.getElementById("queue-message")?.focus());
  }

  const label = (item: QueueItem) =>
    t("fileOf", { what: typeLabel(item.doc_type), student: item.student_no, version: String(item.version) });

  return (
    <>
      <form class="filters" onSubmit={onFilter} noValidate aria-label={t("filters")}>
        <div class="field">
          <label for="queue-status">{t("status")}</label>
          <select id="queue-status" value={filters.status}
            onChange={(e) => setFilters({ ...filters, status: (e.currentTarget as HTMLSelectElement).value })}>
            {STATUSES[props.kind].map((s) => <option key={s} value={s}>{t(`review_${s}` as Key)}</option>)}
          </select>
        </div>
        {props.kind === "document" && (
          <div class="field">
            <label for="queue-type">{t("docType")}</label>
            <select id="queue-type" value={filters.docType}
              onChange={(e) => setFilters({ ...filters, docType: (e.currentTarget as HTMLSelectElement).value })}>
              <option value="">{t("allTypes")}</option>
              {DOC_TYPES.map((d) => <option key={d} value={d}>{typeLabel(d)}</option>)}
            </select>
          </div>
        )}
        <div class="field">
          <label for="queue-student">{t("studentNo")}</label>
          <input id="queue-student" inputMode="numeric" value={filters.studentNo}
            aria-invalid={studentError ? "true" : undefined}
            aria-describedby={studentError ? "queue-student-error" : undefined}
            onInput={(e) => setFilters({ ...filters, studentNo: (e.currentTarget as HTMLInputElement).value })} />
          {studentError && <p class="field-error" id="queue-student-error"><Say it={studentError} /></p>}
        </div>
        <button type="submit">{t("applyFilters")}</button>
      </form>
      {message && <Announce id="queue-message"><Say it={message} /></Announce>}
      {error && <Alert kind="error"><Say it={error} /></Alert>}
      <div class="review">
        <div class="review-list">
          {queue && (
            <table class="data">
              <caption>{t("queueCount", { count: String(queue.count), overdue: String(queue.overdue) })}</caption>
              <thead>
                <tr>
                  <th scope="col">{t("studentNo")}</th>
                  <th scope="col">{props.kind === "document" ? t("docType") : t("version")}</th>
                  <th scope="col">{t("submitted")}</th>
                  <th scope="col"><span class="visually-hidden">{t("actions")}</span></th>
                </tr>
              </thead>
              <tbody>
                {queue.items.map((item) => (
                  <tr key={item.id} data-item={item.id} data-doc-type={item.doc_type ?? "photo"}
                    class={open?.id === item.id ? "selected" : undefined}>
                    <Cell label={t("studentNo")}>{item.student_no}</Cell>
                    <Cell label={props.kind === "document" ? t("docType") : t("version")}>
                      {props.kind === "document" ? `${typeLabel(item.doc_type)} (v${item.version})` : `v${item.version}`}
                    </Cell>
                    <Cell label={t("submitted")}>
                      {format.dateTime(item.submitted_at)}
                      {item.age.overdue && <span class="overdue"> {t("overdue", { days: String(item.age.working_days) })}</span>}
                    </Cell>
                    <Cell label={t("actions")}>
                      {applied.status === "pending" ? (
                        <button type="button" aria-label={t("reviewItem", { what: label(item) })}
                          onClick={() => { setMessage(null); setOpen(item); }}>
                          {t("review")}
                        </button>
                      ) : (
                        <button type="button" class="secondary" aria-label={t("viewItem", { what: label(item) })}
                          onClick={() => setOpen(item)}>
                          {t("view")}
                        </button>
                      )}
                    </Cell>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {queue && queue.items.length === 0 && <p>{t("queueEmpty")}</p>}
        </div>
        {open && (
          <section class="review-item card" aria-labelledby="review-heading">
            <h2 id="review-heading" tabIndex={-1}>{label(open)}</h2>
            <p>{open.filename ? `${open.filename} · ` : ""}{format.dateTime(open.submitted_at)}</p>
            <div class="side-by-side">
              <FileView item={open} label={label(open)} />
              {applied.status === "pending" &&
                (props.kind === "document" ? (
                  <DocumentActions item={open} onDone={done} />
                ) : (
                  <PhotoActions item={open} onDone={done} />
                ))}
            </div>
            <button type="button" class="secondary" onClick={() => setOpen(null)}>{t("close")}</button>
          </section>
        )}
      </div>
    </>
  );
}

export function DocumentQueuePage() {
  const t = useT();
  return (
    <>
      <h1>{t("navDocuments")}</h1>
      <Queue kind="document" />
    </>
  );
}

export function PhotoQueuePage() {
  const t = useT();
  return (
    <>
      <h1>{t("navPhotos")}</h1>
      <Queue kind="photo" />
    </>
  );
}
