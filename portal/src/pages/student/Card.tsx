// The student card: its state and number once issued, and the collection slot.
import { useRef, useState } from "preact/hooks";
import { api, ApiError } from "../../api";
import { Alert } from "../../components";
import { useT } from "../../context";
import type { Key } from "../../i18n";
import { Announcer, errorDetail, useDates, usePoll } from "./shared";
import type { MyCard, MySlots, Slot } from "./types";

export function CardPage() {
  const t = useT();
  const { day, moment, time } = useDates();
  const [card, setCard] = useState<MyCard | null>(null);
  const [missing, setMissing] = useState(false);
  const [slots, setSlots] = useState<MySlots | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [result, setResult] = useState<{ kind: "success" | "error"; text: string } | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [announcement, setAnnouncement] = useState("");
  const previous = useRef<string | null>(null);

  const when = (s: Slot) => `${moment(s.starts_at)}–${time(s.ends_at)}`;

  async function load() {
    try {
      const [mine, open] = await Promise.all([
        api<MyCard>("/api/card/me").catch((e) => {
          if (e instanceof ApiError && e.status === 404) return null;
          throw e;
        }),
        api<MySlots>("/api/card/me/slots"),
      ]);
      const state = mine ? `${mine.status}:${mine.slot?.slot_id ?? ""}` : "none";
      if (previous.current !== null && previous.current !== state && mine) {
        setAnnouncement(t("me_cardChanged", { status: t(`me_cardStatus_${mine.status}` as Key) }));
      }
      previous.current = state;
      setCard(mine);
      setMissing(mine === null);
      setSlots(open);
      setError(null);
    } catch (e) {
      setError(errorDetail(e));
    }
  }
  usePoll(load);

  async function book(slot: Slot) {
    setBusy(slot.slot_id);
    setResult(null);
    try {
      const mine = await api<MyCard>("/api/card/me/booking", { method: "POST", body: { slot_id: slot.slot_id } });
      previous.current = `${mine.status}:${mine.slot?.slot_id ?? ""}`;
      setCard(mine);
      setResult({ kind: "success", text: t("me_slotBooked", { when: when(slot) }) });
      setSlots(await api<MySlots>("/api/card/me/slots"));
    } catch (e) {
      setResult({ kind: "error", text: errorDetail(e) });
    } finally {
      setBusy(null);
    }
  }

  const issued = card?.card && card.status === "issued";
  const booked = card?.slot ?? null;
  return (
    <>
      <h1>{t("me_cardTitle")}</h1>
      <Announcer message={announcement} />
      {error && <Alert kind="error">{t("error", { detail: error })}</Alert>}
      {missing && <Alert kind="info">{t("me_cardNoRecord")}</Alert>}
      {card && (
        <p class="status-line">
          {t("status")}:{" "}
          <strong class={`status card-status-${card.status}`} data-card-status={card.status}>
            {t(`me_cardStatus_${card.status}` as Key)}
          </strong>
        </p>
      )}
      {card?.status === "awaiting_eligibility" && <p>{t("me_cardAwaitingHelp")}</p>}
      {card?.card && (
        <dl class="summary card-details">
          <div class="summary-row"><dt>{t("me_cardNumber")}</dt><dd data-testid="card-no">{card.card.card_no}</dd></div>
          <div class="summary-row"><dt>{t("me_cardName")}</dt><dd>{card.card.surname} {card.card.given_names}{card.card.chinese_name ? ` ${card.card.chinese_name}` : ""}</dd></div>
          <div class="summary-row"><dt>{t("me_cardProgramme")}</dt><dd>{card.card.programme_code} {card.card.programme_name}</dd></div>
          <div class="summary-row"><dt>{t("me_cardExpires")}</dt><dd>{day(card.card.expires_on)}</dd></div>
          {card.card.collected_at && (
            <div class="summary-row"><dt>{t("me_cardCollectedAt")}</dt><dd>{moment(card.card.collected_at)}</dd></div>
          )}
        </dl>
      )}
      {issued && (
        <>
          <h2>{t("me_collectionTitle")}</h2>
          {booked ? (
            <p data-testid="booked-slot" data-slot-id={booked.slot_id}>
              {t("me_yourSlot", { when: when(booked), venue: booked.venue })}
            </p>
          ) : (
            <p data-testid="booked-slot">{t("me_noSlotYet")}</p>
          )}
          {card.bring.length > 0 && (
            <>
              <h3>{t("me_bringTitle")}</h3>
              <ul>{card.bring.map((b) => <li key={b}>{b}</li>)}</ul>
            </>
          )}
          {result && <Alert kind={result.kind}>{result.text}</Alert>}
          <h3>{booked ? t("me_changeSlot") : t("me_chooseSlot")}</h3>
          {slots && slots.slots.filter((s) => s.slot_id !== booked?.slot_id).length === 0 && <p>{t("me_noSlots")}</p>}
          <ul class="slot-list">
            {(slots?.slots ?? []).filter((s) => s.slot_id !== booked?.slot_id).map((s) => (
              <li key={s.slot_id} data-slot={s.slot_id}>
                <span>
                  <strong>{when(s)}</strong>
                  <br />
                  <span class="hint">{s.venue} · {t("me_placesLeft", { n: String(s.remaining) })}</span>
                </span>
                <button type="button" disabled={busy !== null} onClick={() => book(s)}
                  aria-label={`${booked ? t("me_rebook") : t("me_book")}: ${when(s)}`}>
                  {busy === s.slot_id ? t("working") : booked ? t("me_rebook") : t("me_book")}
                </button>
              </li>
            ))}
          </ul>
        </>
      )}
    </>
  );
}
