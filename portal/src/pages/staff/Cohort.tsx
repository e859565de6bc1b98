// The cohort: filters, paging and CSV export of the registrations.
import { useEffect, useState } from "preact/hooks";
import { api } from "../../api";
import { Alert } from "../../components";
import { useT } from "../../context";
import { downloadFile } from "../../download";
import type { Key } from "../../i18n";
import { Announce, Cell, describe, type Said, said, Say, useFormat } from "./ui";

interface Summary {
  student_no: string;
  status: string;
  intake_year: number | null;
  surname: string | null;
  given_names: string | null;
  chinese_name: string | null;
  programme_code: string | null;
  submitted_at: string | null;
  outstanding_items: string[];
}

interface Page {
  total: number;
  limit: number;
  offset: number;
  items: Summary[];
}

const PAGE_SIZES = [10, 20, 50, 100] as const;
const STATUSES = ["in_progress", "completed", "incomplete", "withdrawn"] as const;

interface Filters {
  status: string;
  programme: string;
  intake: string;
  q: string;
}

function queryOf(f: Filters): URLSearchParams {
  const query = new URLSearchParams();
  if (f.status) query.set("status", f.status);
  if (f.programme.trim()) query.set("programme", f.programme.trim());
  if (f.intake.trim()) query.set("intake_year", f.intake.trim());
  if (f.q.trim()) query.set("q", f.q.trim());
  return query;
}

export function CohortPage() {
  const t = useT();
  const format = useFormat();
  const empty: Filters = { status: "", programme: "", intake: "", q: "" };
  const [filters, setFilters] = useState<Filters>(empty);
  const [applied, setApplied] = useState<Filters>(empty);
  const [problems, setProblems] = useState<Partial<Record<keyof Filters, Said>>>({});
  const [offset, setOffset] = useState(0);
  const [pageSize, setPageSize] = useState(20);
  const [page, setPage] = useState<Page | null>(null);
  const [error, setError] = useState<Said | null>(null);
  const [exported, setExported] = useState<Said | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    const query = queryOf(applied);
    query.set("limit", String(pageSize));
    query.set("offset", String(offset));
    setError(null);
    api<Page>(`/api/registration/registrations?${query}`)
      .then(setPage)
      .catch((e) => setError(said("error", { detail: describe(e) })));
  }, [applied, offset, pageSize]);

  function onSearch(event: Event) {
    event.preventDefault();
    const found: Partial<Record<keyof Filters, Said>> = {};
    if (filters.intake.trim() && !/^20\d\d$|^2100$/.test(filters.intake.trim())) found.intake = said("intakeFormat");
    if (filters.programme.trim() && !/^[A-Za-z0-9-]{1,20}$/.test(filters.programme.trim()))
      found.programme = said("programmeFormat");
    setProblems(found);
    if (Object.keys(found).length) return;
    setOffset(0);
    setApplied({ ...filters });
  }

  async function onExport() {
    setBusy(true);
    setExported(null);
    try {
      const name = await downloadFile(`/api/registration/registrations/export.csv?${queryOf(applied)}`, "registrations.csv");
      setExported(said("exported", { name }));
    } catch (e) {
      setError(said("error", { detail: describe(e) }));
    } finally {
      setBusy(false);
    }
  }

  const field = (key: keyof Filters, id: string, label: Key, hint?: Key) => (
    <div class="field">
      <label for={id}>{t(label)}</label>
      {hint && <p class="hint" id={`${id}-hint`}>{t(hint)}</p>}
      <input id={id} value={filters[key]}
        aria-invalid={problems[key] ? "true" : undefined}
        aria-describedby={[hint ? `${id}-hint` : "", problems[key] ? `${id}-error` : ""].filter(Boolean).join(" ") || undefined}
        onInput={(e) => setFilters({ ...filters, [key]: (e.currentTarget as HTMLInputElement).value })} />
      {problems[key] && <p class="field-error" id={`${id}-error`}><Say it={problems[key]} /></p>}
    </div>
  );

  const last = page ? Math.min(page.offset + page.items.length, page.total) : 0;
  return (
    <>
      <h1>{t("navCohort")}</h1>
      <form class="filters" onSubmit={onSearch} noValidate aria-label={t("filters")}>
        <div class="field">
          <label for="cohort-status">{t("status")}</label>
          <select id="cohort-status" value={filters.status}
            onChange={(e) => setFilters({ ...filters, status: (e.currentTarget as HTMLSelectElement).value })}>
            <option value="">{t("allStatuses")}</option>
            {STATUSES.map((s) => <option key={s} value={s}>{t(`status_${s}` as Key)}</option>)}
          </select>
        </div>
        {field("programme", "cohort-programme", "programme")}
        {field("intake", "cohort-intake", "intakeYear")}
        {field("q", "cohort-q", "search", "searchHint")}
        <button type="submit">{t("applyFilters")}</button>
      </form>
      {error && <Alert kind="error"><Say it={error} /></Alert>}
      <div class="toolbar">
        <button type="button" class="secondary" disabled={busy} onClick={() => void onExport()}>
          {t("exportCsv")}
        </button>
        {exported && <Announce><Say it={exported} /></Announce>}
      </div>
      {page && (
        <>
          <table class="data">
            <caption>
              {page.total === 0 ? t("noMatches") : t("showing", { from: String(page.offset + 1), to: String(last), total: String(page.total) })}
            </caption>
            <thead>
              <tr>
                <th scope="col">{t("studentNo")}</th>
                <th scope="col">{t("name")}</th>
                <th scope="col">{t("programme")}</th>
                <th scope="col">{t("intakeYear")}</th>
                <th scope="col">{t("status")}</th>
                <th scope="col">{t("outstanding")}</th>
                <th scope="col">{t("submitted")}</th>
              </tr>
            </thead>
            <tbody>
              {page.items.map((r) => (
                <tr key={r.student_no} data-student={r.student_no}>
                  <Cell label={t("studentNo")}>{r.student_no}</Cell>
                  <Cell label={t("name")}>
                    {[r.surname, r.given_names].filter(Boolean).join(", ")}
                    {r.chinese_name && <span lang="zh-Hant"> {r.chinese_name}</span>}
                  </Cell>
                  <Cell label={t("programme")}>{r.programme_code ?? "—"}</Cell>
                  <Cell label={t("intakeYear")}>{r.intake_year ?? "—"}</Cell>
                  <Cell label={t("status")}>
                    <span class={`status status-${r.status}`}>{t(`status_${r.status}` as Key)}</span>
                  </Cell>
                  <Cell label={t("outstanding")}>{r.outstanding_items.length}</Cell>
                  <Cell label={t("submitted")}>{format.dateTime(r.submitted_at)}</Cell>
                </tr>
              ))}
            </tbody>
          </table>
          <nav class="pager" aria-label={t("pages")}>
            <div class="field">
              <label for="cohort-page-size">{t("pageSize")}</label>
              <select id="cohort-page-size" value={String(pageSize)}
                onChange={(e) => {
                  setOffset(0);
                  setPageSize(Number((e.currentTarget as HTMLSelectElement).value));
                }}>
                {PAGE_SIZES.map((n) => <option key={n} value={String(n)}>{n}</option>)}
              </select>
            </div>
            <button type="button" class="secondary" disabled={page.offset === 0}
              onClick={() => setOffset(Math.max(0, page.offset - pageSize))}>
              {t("previousPage")}
            </button>
            <button type="button" class="secondary" disabled={last >= page.total}
              onClick={() => setOffset(page.offset + pageSize)}>
              {t("nextPage")}
            </button>
          </nav>
        </>
      )}
    </>
  );
}
