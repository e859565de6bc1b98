// Intake calendars and closing an intake (with a confirmation step).
import { useEffect, useState } from "preact/hooks";
import { api } from "../../api";
import { Alert } from "../../components";
import { useT } from "../../context";
import type { Key } from "../../i18n";
import { Cell, describe, type Said, said, Say, StaffField, useFormat } from "./ui";

interface Intake {
  intake_year: number;
  registration_deadline: string | null;
  term_start: string | null;
  closed_at: string | null;
}

interface CloseOut {
  intake_year: number;
  already_closed: boolean;
  applied: number;
  outcomes: Record<string, number>;
}

function CalendarForm(props: { onSaved: () => void }) {
  const t = useT();
  const [form, setForm] = useState({ year: "", deadline: "", termStart: "" });
  const [problems, setProblems] = useState<Record<string, Said>>({});
  const [error, setError] = useState<Said | null>(null);
  const [saved, setSaved] = useState<Said | null>(null);
  const [busy, setBusy] = useState(false);

  async function onSubmit(event: Event) {
    event.preventDefault();
    const found: Record<string, Said> = {};
    if (!/^\d{4}$/.test(form.year)) found.year = said("intakeFormat");
    if (!form.deadline) found.deadline = said("required");
    if (!form.termStart) found.termStart = said("required");
    setProblems(found);
    if (Object.keys(found).length) return;
    setBusy(true);
    setError(null);
    setSaved(null);
    try {
      // The deadline is entered in Hong Kong time.
      await api(`/api/registration/intakes/${form.year}`, {
        method: "PUT",
        body: { registration_deadline: `${form.deadline}:00+08:00`, term_start: form.termStart },
      });
      setSaved(said("calendarSaved", { year: form.year }));
      props.onSaved();
    } catch (e) {
      setError(said("error", { detail: describe(e) }));
    } finally {
      setBusy(false);
    }
  }

  const input = (key: "year" | "deadline" | "termStart", id: string, label: Key, type: string) => (
    <StaffField id={id} label={label} type={type} value={form[key]} problem={problems[key]}
      inputMode={key === "year" ? "numeric" : undefined} onInput={(value) => setForm({ ...form, [key]: value })} />
  );

  return (
    <form class="card" onSubmit={onSubmit} noValidate aria-labelledby="calendar-heading">
      <h2 id="calendar-heading">{t("intakeCalendar")}</h2>
      <p>{t("intakeCalendarHelp")}</p>
      <div class="filters">
        {input("year", "calendar-year", "intakeYear", "text")}
        {input("deadline", "calendar-deadline", "registrationDeadlineHk", "datetime-local")}
        {input("termStart", "calendar-term", "termStartDate", "date")}
      </div>
      <button type="submit" disabled={busy}>{t("saveCalendar")}</button>
      {error && <Alert kind="error"><Say it={error} /></Alert>}
      {saved && <Alert kind="success"><Say it={saved} /></Alert>}
    </form>
  );
}

export function IntakesPage() {
  const t = useT();
  const format = useFormat();
  const [intakes, setIntakes] = useState<Intake[] | null>(null);
  const [error, setError] = useState<Said | null>(null);
  const [confirming, setConfirming] = useState<number | null>(null);
  const [result, setResult] = useState<CloseOut | null>(null);
  const [busy, setBusy] = useState(false);
  const [reload, setReload] = useState(0);

  useEffect(() => {
    api<Intake[]>("/api/registration/intakes")
      .then(setIntakes)
      .catch((e) => setError(said("error", { detail: describe(e) })));
  }, [reload]);

  useEffect(() => {
    if (confirming !== null) document.getElementById("confirm-close-heading")?.focus();
  }, [confirming]);

  async function close(year: number) {
    setBusy(true);
    setError(null);
    try {
      setResult(await api<CloseOut>(`/api/registration/intakes/${year}/close`, { method: "POST" }));
      setConfirming(null);
      setReload((n) => n + 1);
    } catch (e) {
      setError(said("error", { detail: describe(e) }));
      setConfirming(null);
    } finally {
      setBusy(false);
    }
  }

  return (
    <>
      <h1>{t("navIntakes")}</h1>
      {error && <Alert kind="error"><Say it={error} /></Alert>}
      {result && (
        <Alert kind="success">
          {result.already_closed
            ? t("intakeAlreadyClosed", { year: String(result.intake_year) })
            : t("intakeClosed", {
                year: String(result.intake_year),
                applied: String(result.applied),
                outcomes: Object.entries(result.outcomes)
                  .map(([status, n]) => `${t(`status_${status}` as Key)}: ${n}`)
                  .join(", ") || "—",
              })}
        </Alert>
      )}
      {confirming !== null && (
        <section class="confirm card" role="alertdialog" aria-labelledby="confirm-close-heading"
          aria-describedby="confirm-close-text"
          onKeyDown={(e) => e.key === "Escape" && setConfirming(null)}>
          <h2 id="confirm-close-heading" tabIndex={-1}>{t("confirmCloseTitle", { year: String(confirming) })}</h2>
          <p id="confirm-close-text">{t("confirmCloseText")}</p>
          <div class="toolbar">
            <button type="button" class="danger" disabled={busy} onClick={() => void close(confirming)}>
              {t("confirmClose", { year: String(confirming) })}
            </button>
            <button type="button" class="secondary" onClick={() => setConfirming(null)}>{t("cancel")}</button>
          </div>
        </section>
      )}
      {intakes && (
        <table class="data">
          <caption>{t("intakes")}</caption>
          <thead>
            <tr>
              <th scope="col">{t("intakeYear")}</th>
              <th scope="col">{t("registrationDeadlineHk")}</th>
              <th scope="col">{t("termStartDate")}</th>
              <th scope="col">{t("closedAt")}</th>
              <th scope="col"><span class="visually-hidden">{t("actions")}</span></th>
            </tr>
          </thead>
          <tbody>
            {intakes.map((i) => (
              <tr key={i.intake_year} data-intake={i.intake_year}>
                <Cell label={t("intakeYear")}>{i.intake_year}</Cell>
                <Cell label={t("registrationDeadlineHk")}>{format.dateTime(i.registration_deadline)}</Cell>
                <Cell label={t("termStartDate")}>{format.date(i.term_start)}</Cell>
                <Cell label={t("closedAt")}>{i.closed_at ? format.dateTime(i.closed_at) : t("open")}</Cell>
                <Cell label={t("actions")}>
                  {!i.closed_at && (
                    <button type="button" class="danger" onClick={() => { setResult(null); setConfirming(i.intake_year); }}>
                      {t("closeIntake", { year: String(i.intake_year) })}
                    </button>
                  )}
                </Cell>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <CalendarForm onSaved={() => setReload((n) => n + 1)} />
    </>
  );
}
