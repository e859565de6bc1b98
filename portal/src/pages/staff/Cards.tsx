// The card office: the collection schedule (slots, capacity, bookings), adding a
// slot, and the collection desk that marks a student's card collected.
import { useEffect, useState } from "preact/hooks";
import { api } from "../../api";
import { Alert } from "../../components";
import { useT } from "../../context";
import type { Key } from "../../i18n";
import { Cell, describe, type Said, said, Say, StaffField, useFormat } from "./ui";

interface StaffSlot {
  slot_id: string;
  venue: string;
  starts_at: string;
  ends_at: string;
  remaining: number;
  capacity: number;
  booked: number;
}

interface Schedule {
  venue: string | null;
  bring: string[];
  slots: StaffSlot[];
}

interface Window {
  start: string;
  end: string;
  capacity: number;
}

interface Card {
  card_no: string;
  state: string;
  expires_on: string;
  collected_at: string | null;
  collected_by: string | null;
}

interface Holder {
  student_no: string;
  surname: string | null;
  given_names: string | null;
  programme_code: string | null;
  status: string;
  photo_approved: boolean;
  card_no: string | null;
  slot_id: string | null;
  cards: Card[];
}

/** "HH:MM" of an instant in Hong Kong. */
function hkTime(iso: string): string {
  return new Intl.DateTimeFormat("en-GB", {
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
    timeZone: "Asia/Hong_Kong",
  }).format(new Date(iso));
}

/** The schedule as the PUT body wants it: days of windows, from the published slots. */
function daysOf(slots: StaffSlot[]): Map<string, Window[]> {
  const days = new Map<string, Window[]>();
  for (const slot of slots) {
    // Slot ids are "<date>-<HHMM>" in Hong Kong time.
    const date = slot.slot_id.slice(0, 10);
    const windows = days.get(date) ?? [];
    windows.push({ start: hkTime(slot.starts_at), end: hkTime(slot.ends_at), capacity: slot.capacity });
    days.set(date, windows);
  }
  return days;
}

function AddSlot(props: { schedule: Schedule; onSaved: (s: Schedule) => void }) {
  const t = useT();
  const [form, setForm] = useState({
    venue: props.schedule.venue ?? "",
    bring: props.schedule.bring.join("\n"),
    date: "",
    start: "",
    end: "",
    capacity: "20",
  });
  const [problems, setProblems] = useState<Record<string, Said>>({});
  const [error, setError] = useState<Said | null>(null);
  const [saved, setSaved] = useState<Said | null>(null);
  const [busy, setBusy] = useState(false);

  async function onSubmit(event: Event) {
    event.preventDefault();
    const found: Record<string, Said> = {};
    for (const key of ["venue", "bring", "date", "start", "end"] as const) {
      if (!form[key].trim()) found[key] = said("required");
    }
    const capacity = Number(form.capacity);
    if (!Number.isInteger(capacity) || capacity < 1) found.capacity = said("capacityFormat");
    if (form.start && form.end && form.end <= form.start) found.end = said("endAfterStart");
    setProblems(found);
    if (Object.keys(found).length) return;
    const days = daysOf(props.schedule.slots);
    const windows = days.get(form.date) ?? [];
    windows.push({ start: form.start, end: form.end, capacity });
    days.set(form.date, windows);
    setBusy(true);
    setError(null);
    setSaved(null);
    try {
      // Publishing the whole schedule again keeps every slot and its bookings.
      const schedule = await api<Schedule>("/api/card/schedule", {
        method: "PUT",
        body: {
          venue: form.venue.trim(),
          bring: form.bring.split("\n").map((l) => l.trim()).filter(Boolean),
          days: [...days.entries()].sort().map(([date, w]) => ({ date, windows: w })),
        },
      });
      setSaved(said("slotAdded", { date: form.date, start: form.start }));
      props.onSaved(schedule);
    } catch (e) {
      setError(said("error", { detail: describe(e) }));
    } finally {
      setBusy(false);
    }
  }

  const input = (key: keyof typeof form, id: string, label: Key, type = "text") => (
    <StaffField id={id} label={label} type={type} value={form[key]} problem={problems[key]}
      min={type === "number" ? 1 : undefined} onInput={(value) => setForm({ ...form, [key]: value })} />
  );

  return (
    <form class="card" onSubmit={onSubmit} noValidate aria-labelledby="add-slot-heading">
      <h2 id="add-slot-heading">{t("addSlot")}</h2>
      <p>{t("addSlotHelp")}</p>
      {input("venue", "slot-venue", "venue")}
      {input("bring", "slot-bring", "bringList", "textarea")}
      <div class="filters">
        {input("date", "slot-date", "slotDate", "date")}
        {input("start", "slot-start", "slotStart", "time")}
        {input("end", "slot-end", "slotEnd", "time")}
        {input("capacity", "slot-capacity", "capacity", "number")}
      </div>
      <button type="submit" disabled={busy}>{t("addSlotButton")}</button>
      {error && <Alert kind="error"><Say it={error} /></Alert>}
      {saved && <Alert kind="success"><Say it={saved} /></Alert>}
    </form>
  );
}

function CollectionDesk() {
  const t = useT();
  const format = useFormat();
  const [studentNo, setStudentNo] = useState("");
  const [problem, setProblem] = useState<Said | null>(null);
  const [holder, setHolder] = useState<Holder | null>(null);
  const [error, setError] = useState<Said | null>(null);
  const [done, setDone] = useState<Said | null>(null);
  const [busy, setBusy] = useState(false);

  async function find(event: Event) {
    event.preventDefault();
    const number = studentNo.trim();
    if (!/^\d{8,10}$/.test(number)) return setProblem(said("studentNoFormat"));
    setProblem(null);
    setError(null);
    setDone(null);
    setHolder(null);
    try {
      setHolder(await api<Holder>(`/api/card/holders/${number}`));
    } catch (e) {
      setError(said("error", { detail: describe(e) }));
    }
  }

  async function collect(cardNo: string) {
    setBusy(true);
    setError(null);
    try {
      const card = await api<Card>(`/api/card/cards/${cardNo}/collected`, { method: "POST" });
      setDone(said("cardCollected", { card: card.card_no }));
      if (holder) setHolder(await api<Holder>(`/api/card/holders/${holder.student_no}`));
    } catch (e) {
      setError(said("error", { detail: describe(e) }));
    } finally {
      setBusy(false);
    }
  }

  const current = holder?.cards.find((c) => c.card_no === holder.card_no) ?? null;
  return (
    <section class="card" aria-labelledby="desk-heading">
      <h2 id="desk-heading">{t("collectionDesk")}</h2>
      <form onSubmit={find} noValidate class="filters">
        <div class="field">
          <label for="desk-student">{t("studentNo")}</label>
          <input id="desk-student" inputMode="numeric" value={studentNo}
            aria-invalid={problem ? "true" : undefined}
            aria-describedby={problem ? "desk-student-error" : undefined}
            onInput={(e) => setStudentNo((e.currentTarget as HTMLInputElement).value)} />
          {problem && <p class="field-error" id="desk-student-error"><Say it={problem} /></p>}
        </div>
        <button type="submit">{t("findCard")}</button>
      </form>
      {error && <Alert kind="error"><Say it={error} /></Alert>}
      {done && <Alert kind="success"><Say it={done} /></Alert>}
      {holder && (
        <div data-holder={holder.student_no}>
          <dl class="figures">
            <div><dt>{t("name")}</dt><dd>{[holder.surname, holder.given_names].filter(Boolean).join(", ") || "—"}</dd></div>
            <div><dt>{t("programme")}</dt><dd>{holder.programme_code ?? "—"}</dd></div>
            <div><dt>{t("cardStatus")}</dt><dd data-card-status>{t(`card_${holder.status}` as Key)}</dd></div>
            <div><dt>{t("cardNo")}</dt><dd>{holder.card_no ?? "—"}</dd></div>
            <div><dt>{t("slot")}</dt><dd>{holder.slot_id ?? "—"}</dd></div>
            {current?.collected_at && (
              <div><dt>{t("collectedAt")}</dt><dd>{format.dateTime(current.collected_at)}</dd></div>
            )}
          </dl>
          {current && !current.collected_at && (
            <button type="button" disabled={busy} onClick={() => void collect(current.card_no)}>
              {t("markCollected", { card: current.card_no })}
            </button>
          )}
          {!current && <p>{t("noValidCard")}</p>}
        </div>
      )}
    </section>
  );
}

export function CardsPage() {
  const t = useT();
  const format = useFormat();
  const [schedule, setSchedule] = useState<Schedule | null>(null);
  const [error, setError] = useState<Said | null>(null);

  useEffect(() => {
    api<Schedule>("/api/card/schedule")
      .then(setSchedule)
      .catch((e) => setError(said("error", { detail: describe(e) })));
  }, []);

  return (
    <>
      <h1>{t("navCards")}</h1>
      {error && <Alert kind="error"><Say it={error} /></Alert>}
      <CollectionDesk />
      {schedule && (
        <>
          <table class="data">
            <caption>{schedule.venue ? t("scheduleAt", { venue: schedule.venue }) : t("schedule")}</caption>
            <thead>
              <tr>
                <th scope="col">{t("slotTime")}</th>
                <th scope="col">{t("capacity")}</th>
                <th scope="col">{t("booked")}</th>
                <th scope="col">{t("remaining")}</th>
              </tr>
            </thead>
            <tbody>
              {schedule.slots.map((s) => (
                <tr key={s.slot_id} data-slot={s.slot_id}>
                  <Cell label={t("slotTime")}>{`${format.dateTime(s.starts_at)} – ${hkTime(s.ends_at)}`}</Cell>
                  <Cell label={t("capacity")}>{s.capacity}</Cell>
                  <Cell label={t("booked")}>{s.booked}</Cell>
                  <Cell label={t("remaining")}>{s.remaining}</Cell>
                </tr>
              ))}
            </tbody>
          </table>
          {schedule.slots.length === 0 && <p>{t("noSlots")}</p>}
          <AddSlot schedule={schedule} onSaved={setSchedule} />
        </>
      )}
    </>
  );
}
