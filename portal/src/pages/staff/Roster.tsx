// Roster import (CSV or JSON) with progress and a row-error report, and invitations.
import { useState } from "preact/hooks";
import { api } from "../../api";
import { Alert } from "../../components";
import { useT } from "../../context";
import { sendRaw } from "../../download";
import { Announce, Cell, describe, type Said, said, Say, sleep } from "./ui";

interface RowError {
  row: number;
  field: string;
  message: string;
}

interface ImportJob {
  import_id: string;
  status: "running" | "completed" | "failed";
  total: number;
  processed: number;
  created: number;
  updated: number;
  unchanged: number;
  rejected: number;
  invited: number;
  error_count: number;
  errors: RowError[];
  failure?: string | null;
}

function rosterType(file: File): string | null {
  const name = file.name.toLowerCase();
  if (name.endsWith(".csv") || file.type === "text/csv") return "text/csv";
  if (name.endsWith(".json") || file.type === "application/json") return "application/json";
  return null;
}

function RosterImport() {
  const t = useT();
  const [file, setFile] = useState<File | null>(null);
  const [invite, setInvite] = useState(false);
  const [fileError, setFileError] = useState<Said | null>(null);
  const [error, setError] = useState<Said | null>(null);
  const [job, setJob] = useState<ImportJob | null>(null);
  const [busy, setBusy] = useState(false);

  async function onSubmit(event: Event) {
    event.preventDefault();
    setError(null);
    if (!file) return setFileError(said("rosterChooseFile"));
    const contentType = rosterType(file);
    if (!contentType) return setFileError(said("rosterWrongType"));
    setFileError(null);
    setBusy(true);
    setJob(null);
    try {
      const query = `background=true${invite ? "&invite=true" : ""}`;
      const started = await sendRaw<{ import_id: string }>(
        `/api/identity/admissions/import?${query}`,
        await file.text(),
        contentType,
      );
      // The service imports in chunks and records its progress; follow it until done.
      const progress = `/api/identity/admissions/imports/${started.body.import_id}`;
      let current = await api<ImportJob>(progress);
      setJob(current);
      while (current.status === "running") {
        await sleep(600);
        current = await api<ImportJob>(progress);
        setJob(current);
      }
      if (current.status === "failed") setError(said("rosterFailed", { detail: current.failure ?? "" }));
    } catch (e) {
      setError(said("error", { detail: describe(e) }));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section aria-labelledby="import-heading" class="card">
      <h2 id="import-heading">{t("rosterImport")}</h2>
      <p>{t("rosterHelp")}</p>
      <form onSubmit={onSubmit} noValidate>
        <div class="field">
          <label for="roster-file">{t("rosterFile")}</label>
          <p class="hint" id="roster-file-hint">{t("rosterFileHint")}</p>
          <input id="roster-file" type="file" accept=".csv,.json,text/csv,application/json"
            aria-describedby={fileError ? "roster-file-hint roster-file-error" : "roster-file-hint"}
            aria-invalid={fileError ? "true" : undefined}
            onChange={(e) => setFile((e.currentTarget as HTMLInputElement).files?.[0] ?? null)} />
          {fileError && <p class="field-error" id="roster-file-error"><Say it={fileError} /></p>}
        </div>
        <div class="check">
          <input id="roster-invite" type="checkbox" checked={invite}
            onChange={(e) => setInvite((e.currentTarget as HTMLInputElement).checked)} />
          <label for="roster-invite">{t("rosterInvite")}</label>
        </div>
        <button type="submit" disabled={busy}>{busy ? t("working") : t("rosterImportButton")}</button>
      </form>
      {error && <Alert kind="error"><Say it={error} /></Alert>}
      {job && (
        <div class="import-progress">
          <label for="roster-progress">{t("rosterProgress")}</label>
          <progress id="roster-progress" max={Math.max(job.total, 1)} value={job.processed} />
          <Announce>
            {job.status === "running"
              ? t("rosterProcessed", { done: String(job.processed), total: String(job.total) })
              : t("rosterDone", { total: String(job.total) })}
          </Announce>
        </div>
      )}
      {job && job.status === "completed" && <ImportReport job={job} />}
    </section>
  );
}

function ImportReport(props: { job: ImportJob }) {
  const t = useT();
  const { job } = props;
  return (
    <div data-testid="import-report">
      <dl class="figures">
        <div><dt>{t("rosterCreated")}</dt><dd data-figure="created">{job.created}</dd></div>
        <div><dt>{t("rosterUpdated")}</dt><dd data-figure="updated">{job.updated}</dd></div>
        <div><dt>{t("rosterUnchanged")}</dt><dd data-figure="unchanged">{job.unchanged}</dd></div>
        <div><dt>{t("rosterRejected")}</dt><dd data-figure="rejected">{job.rejected}</dd></div>
        <div><dt>{t("rosterInvited")}</dt><dd data-figure="invited">{job.invited}</dd></div>
      </dl>
      {job.errors.length > 0 && (
        <table class="data">
          <caption>{t("rosterErrors", { count: String(job.error_count) })}</caption>
          <thead>
            <tr>
              <th scope="col">{t("rosterRow")}</th>
              <th scope="col">{t("rosterField")}</th>
              <th scope="col">{t("rosterReason")}</th>
            </tr>
          </thead>
          <tbody>
            {job.errors.map((e, i) => (
              <tr key={i} data-row={e.row}>
                <Cell label={t("rosterRow")}>{e.row}</Cell>
                <Cell label={t("rosterField")}>{e.field}</Cell>
                <Cell label={t("rosterReason")}>{e.message}</Cell>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {job.error_count > job.errors.length && (
        <p>{t("rosterMoreErrors", { shown: String(job.errors.length) })}</p>
      )}
    </div>
  );
}

const STUDENT_NO = /^\d{8}$/;

function Invitations() {
  const t = useT();
  const [numbers, setNumbers] = useState("");
  const [numbersError, setNumbersError] = useState<Said | null>(null);
  const [result, setResult] = useState<Said | null>(null);
  const [error, setError] = useState<Said | null>(null);
  const [busy, setBusy] = useState(false);

  async function send(studentNos: string[] | null) {
    setBusy(true);
    setError(null);
    setResult(null);
    try {
      const answer = await api<{ invited: number }>("/api/identity/invitations", {
        method: "POST",
        body: studentNos ? { student_nos: studentNos } : {},
      });
      setResult(said("invitationsSent", { count: String(answer.invited) }));
    } catch (e) {
      setError(said("error", { detail: describe(e) }));
    } finally {
      setBusy(false);
    }
  }

  function onResend(event: Event) {
    event.preventDefault();
    const list = numbers.split(/[\s,;]+/).filter(Boolean);
    const bad = list.filter((n) => !STUDENT_NO.test(n));
    if (list.length === 0) return setNumbersError(said("required"));
    if (bad.length) return setNumbersError(said("invitationsBadNumbers", { numbers: bad.join(", ") }));
    setNumbersError(null);
    void send(list);
  }

  return (
    <section aria-labelledby="invite-heading" class="card">
      <h2 id="invite-heading">{t("invitations")}</h2>
      <p>{t("invitationsHelp")}</p>
      <button type="button" disabled={busy} onClick={() => void send(null)}>
        {t("invitationsSendNew")}
      </button>
      <form onSubmit={onResend} noValidate class="resend">
        <div class="field">
          <label for="resend-numbers">{t("invitationsResendLabel")}</label>
          <p class="hint" id="resend-hint">{t("invitationsResendHint")}</p>
          <textarea id="resend-numbers" rows={3} value={numbers}
            aria-invalid={numbersError ? "true" : undefined}
            aria-describedby={numbersError ? "resend-hint resend-error" : "resend-hint"}
            onInput={(e) => setNumbers((e.currentTarget as HTMLTextAreaElement).value)} />
          {numbersError && <p class="field-error" id="resend-error"><Say it={numbersError} /></p>}
        </div>
        <button type="submit" disabled={busy}>{t("invitationsResend")}</button>
      </form>
      {error && <Alert kind="error"><Say it={error} /></Alert>}
      {result && <Alert kind="success"><Say it={result} /></Alert>}
    </section>
  );
}

export function RosterPage() {
  const t = useT();
  return (
    <>
      <h1>{t("navRoster")}</h1>
      <RosterImport />
      <Invitations />
    </>
  );
}
