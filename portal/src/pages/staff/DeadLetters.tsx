// Dead letters of every service, with replay (administrators).
import { useEffect, useState } from "preact/hooks";
import { api } from "../../api";
import { Alert } from "../../components";
import { useT } from "../../context";
import { Cell, describe, type Said, said, Say } from "./ui";

interface DeadLetter {
  id: string;
  source_topic: string;
  event_type: string | null;
  event_id: string | null;
  error: string;
  attempts: number;
  failed_at: string;
}

const SERVICES = ["identity", "registration", "documents", "notifier", "card"] as const;

function ServiceLetters(props: { service: (typeof SERVICES)[number] }) {
  const t = useT();
  const [letters, setLetters] = useState<DeadLetter[] | null>(null);
  const [error, setError] = useState<Said | null>(null);
  const [outcome, setOutcome] = useState<Said | null>(null);
  const [busy, setBusy] = useState(false);
  const [reload, setReload] = useState(0);
  const base = `/api/${props.service}/admin/dead-letters`;

  useEffect(() => {
    setError(null);
    api<DeadLetter[]>(base)
      .then(setLetters)
      .catch((e) => setError(said("error", { detail: describe(e) })));
  }, [reload]);

  async function replay(ids: string[] | null) {
    setBusy(true);
    setError(null);
    try {
      const answer = await api<{ outcomes: Record<string, number> }>(`${base}/replay`, {
        method: "POST",
        body: ids ? { ids } : {},
      });
      const text = Object.entries(answer.outcomes).map(([k, v]) => `${k}: ${v}`).join(", ");
      setOutcome(said("replayed", { outcomes: text || "—" }));
      setReload((n) => n + 1);
    } catch (e) {
      setError(said("error", { detail: describe(e) }));
    } finally {
      setBusy(false);
    }
  }

  const heading = `dead-letters-${props.service}`;
  return (
    <section class="card" aria-labelledby={heading} data-service={props.service}>
      <h2 id={heading}>{t("deadLettersOf", { service: props.service })}</h2>
      {error && <Alert kind="error"><Say it={error} /></Alert>}
      {outcome && <Alert kind="success"><Say it={outcome} /></Alert>}
      {letters === null && !error && <p>{t("working")}</p>}
      {letters && letters.length === 0 && <p data-empty>{t("noDeadLetters")}</p>}
      {letters && letters.length > 0 && (
        <>
          <table class="data">
            <caption>{t("deadLetterCount", { count: String(letters.length) })}</caption>
            <thead>
              <tr>
                <th scope="col">{t("eventType")}</th>
                <th scope="col">{t("sourceTopic")}</th>
                <th scope="col">{t("lastError")}</th>
                <th scope="col">{t("attempts")}</th>
                <th scope="col"><span class="visually-hidden">{t("actions")}</span></th>
              </tr>
            </thead>
            <tbody>
              {letters.map((d) => (
                <tr key={d.id} data-letter={d.id}>
                  <Cell label={t("eventType")}>{d.event_type ?? "—"}</Cell>
                  <Cell label={t("sourceTopic")}>{d.source_topic}</Cell>
                  <Cell label={t("lastError")}>{d.error}</Cell>
                  <Cell label={t("attempts")}>{d.attempts}</Cell>
                  <Cell label={t("actions")}>
                    <button type="button" disabled={busy} aria-label={t("replayOne", { id: d.id })}
                      onClick={() => void replay([d.id])}>
                      {t("replay")}
                    </button>
                  </Cell>
                </tr>
              ))}
            </tbody>
          </table>
          <button type="button" disabled={busy} onClick={() => void replay(null)}>
            {t("replayAll", { service: props.service })}
          </button>
        </>
      )}
    </section>
  );
}

export function DeadLettersPage() {
  const t = useT();
  return (
    <>
      <h1>{t("navDeadLetters")}</h1>
      <p>{t("deadLettersHelp")}</p>
      {SERVICES.map((s) => <ServiceLetters key={s} service={s} />)}
    </>
  );
}
