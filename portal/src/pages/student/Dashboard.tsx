import { useContext, useRef, useState } from "preact/hooks";
import { api, ApiError } from "../../api";
import { Alert } from "../../components";
import { App, useT } from "../../context";
import type { Key } from "../../i18n";
import { AppLink, SOON_MS, usePoll } from "./shared";

interface ChecklistItem {
  item: string;
  label: string;
  label_zh: string;
  compulsory: boolean;
  due_by: string | null;
  state: "missing" | "uploaded" | "verified" | "rejected";
  reason: string | null;
  accepts?: string[];
}

interface MyRegistration {
  student_no: string;
  status: "in_progress" | "completed" | "incomplete" | "withdrawn";
  intake: { intake_year: number; registration_deadline: string | null; term_start: string | null };
  checklist: ChecklistItem[];
}

// Status changes are made by other services (documents verified, photo approved):
// poll, and announce a change to screen-reader users.

/** Where the student acts on a checklist item, and the words of the link. */
function actionFor(item: ChecklistItem): { href: string; label: Key } | null {
  if (item.state === "verified") return null;
  if (item.item === "registration_form") return { href: "/me/form", label: "me_actionForm" };
  if (item.item === "photo") return { href: "/me/documents", label: "me_actionPhoto" };
  if (item.item === "identity_documents") return { href: "/me/form", label: "me_actionResidency" };
  if ((item.accepts ?? []).length > 0) return { href: "/me/documents", label: "me_actionUpload" };
  return null;
}

export function DashboardPage() {
  const t = useT();
  const { language } = useContext(App);
  const [mine, setMine] = useState<MyRegistration | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [announcement, setAnnouncement] = useState("");
  const [updatedAt, setUpdatedAt] = useState<Date | null>(null);
  const previous = useRef<string | null>(null);
  const [preparing, setPreparing] = useState(false);

  // Right after admission the record may not have reached registration yet: the
  // student is told so, and it is asked for again soon.
  usePoll(async () => {
    try {
      const next = await api<MyRegistration>("/api/registration/me");
      if (previous.current !== null && previous.current !== next.status) {
        setAnnouncement(t("statusChanged", { status: t(`status_${next.status}` as Key) }));
      }
      previous.current = next.status;
      setMine(next);
      setError(null);
      setPreparing(false);
      setUpdatedAt(new Date());
    } catch (e) {
      if (e instanceof ApiError && e.status === 404 && previous.current === null) {
        setPreparing(true);
        return SOON_MS;
      }
      setError(e instanceof ApiError ? e.detail : String(e));
    }
  }, [language]);

  const locale = language === "en" ? "en-GB" : "zh-HK";
  const day = (iso: string) => new Date(iso).toLocaleDateString(locale, { dateStyle: "long" });
  const moment = (iso: string) =>
    new Date(iso).toLocaleString(locale, { dateStyle: "long", timeStyle: "short", timeZone: "Asia/Hong_Kong" });

  return (
    <>
      <h1>{t("myRegistration")}</h1>
      <p class="visually-hidden" aria-live="polite">{announcement}</p>
      {error && <Alert kind="error">{t("error", { detail: error })}</Alert>}
      {preparing && !mine && <Alert kind="info">{t("me_formNotYet")}</Alert>}
      {mine && (
        <>
          <p class="status-line">
            {t("status")}:{" "}
            <strong class={`status status-${mine.status}`} data-status={mine.status}>
              {t(`status_${mine.status}` as Key)}
            </strong>
          </p>
          {mine.intake.registration_deadline && (
            <p>{t("deadline", { date: moment(mine.intake.registration_deadline) })}</p>
          )}
          {mine.intake.term_start && <p>{t("termStart", { date: day(mine.intake.term_start) })}</p>}
          <h2>{t("checklist")}</h2>
          <table class="checklist">
            <thead>
              <tr>
                <th scope="col">{t("step")}</th>
                <th scope="col">{t("kind")}</th>
                <th scope="col">{t("dueBy")}</th>
                <th scope="col">{t("state")}</th>
              </tr>
            </thead>
            <tbody>
              {mine.checklist.map((item) => (
                <tr key={item.item} data-item={item.item}>
                  <th scope="row">{language === "en" ? item.label : item.label_zh}</th>
                  <td>{item.compulsory ? t("compulsory") : t("supplementary")}</td>
                  <td>{item.due_by ? day(item.due_by) : ""}</td>
                  <td>
                    <span class={`state state-${item.state}`}>{t(`state_${item.state}` as Key)}</span>
                    {item.reason && <p class="reason">{t("rejectedBecause", { reason: item.reason })}</p>}
                    {actionFor(item) && (
                      <p class="item-action">
                        <AppLink href={actionFor(item)!.href}>{t(actionFor(item)!.label)}</AppLink>
                      </p>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {mine.status === "completed" && (
            <p><AppLink href="/me/card">{t("me_actionCard")}</AppLink></p>
          )}
          {updatedAt && (
            <p class="hint">{t("lastUpdated", { time: updatedAt.toLocaleTimeString(locale) })}</p>
          )}
        </>
      )}
    </>
  );
}
