// The notifier's delivery log: failed notifications (and others by status), resend.
import { useEffect, useState } from "preact/hooks";
import { api } from "../../api";
import { Alert } from "../../components";
import { useT } from "../../context";
import type { Key } from "../../i18n";
import { may, type Role } from "./sections";
import { Announce, Cell, describe, type Said, said, Say, useFormat } from "./ui";

interface Notification {
  id: string;
  student_no: string;
  template: string;
  subject: string | null;
  status: string;
  attempts: number;
  created_at: string;
  confirmed: boolean | null;
  last_error: string | null;
}

// "unconfirmed": sent, but the process stopped before the mail server's answer was
// recorded (maybe delivered, maybe not); like "failed", these may be resent.
const STATUSES = ["failed", "unconfirmed", "pending", "sending", "sent", "awaiting_contact"] as const;

export function NotificationsPage(props: { role: Role }) {
  const t = useT();
  const format = useFormat();
  const [status, setStatus] = useState("failed");
  const [studentNo, setStudentNo] = useState("");
  const [problem, setProblem] = useState<Said | null>(null);
  const [applied, setApplied] = useState({ status: "failed", studentNo: "" });
  const [rows, setRows] = useState<Notification[] | null>(null);
  const [error, setError] = useState<Said | null>(null);
  const [message, setMessage] = useState<Said | null>(null);
  const [reload, setReload] = useState(0);
  const canResend = may(props.role, "resendNotification");

  useEffect(() => {
    const query = new URLSearchParams({ limit: "100" });
    if (applied.status === "unconfirmed") {
      query.set("status", "sent");
      query.set("confirmed", "false");
    } else {
      query.set("status", applied.status);
    }
    if (applied.studentNo) query.set("student_no", applied.studentNo);
    api<Notification[]>(`/api/notifier/notifications?${query}`)
      .then(setRows)
      .catch((e) => setError(said("error", { detail: describe(e) })));
  }, [applied, reload]);

  function onFilter(event: Event) {
    event.preventDefault();
    const number = studentNo.trim();
    if (number && !/^\d{8,10}$/.test(number)) return setProblem(said("studentNoFormat"));
    setProblem(null);
    setApplied({ status, studentNo: number });
  }

  async function resend(n: Notification) {
    setError(null);
    try {
      await api(`/api/notifier/notifications/${n.id}/resend`, { method: "POST" });
      setMessage(said("resent", { student: n.student_no }));
      setReload((x) => x + 1);
    } catch (e) {
      setError(said("error", { detail: describe(e) }));
    }
  }

  return (
    <>
      <h1>{t("navNotifications")}</h1>
      <form class="filters" onSubmit={onFilter} noValidate aria-label={t("filters")}>
        <div class="field">
          <label for="notification-status">{t("status")}</label>
          <select id="notification-status" value={status}
            onChange={(e) => setStatus((e.currentTarget as HTMLSelectElement).value)}>
            {STATUSES.map((s) => <option key={s} value={s}>{t(`delivery_${s}` as Key)}</option>)}
          </select>
        </div>
        <div class="field">
          <label for="notification-student">{t("studentNo")}</label>
          <input id="notification-student" inputMode="numeric" value={studentNo}
            aria-invalid={problem ? "true" : undefined}
            aria-describedby={problem ? "notification-student-error" : undefined}
            onInput={(e) => setStudentNo((e.currentTarget as HTMLInputElement).value)} />
          {problem && <p class="field-error" id="notification-student-error"><Say it={problem} /></p>}
        </div>
        <button type="submit">{t("applyFilters")}</button>
      </form>
      {message && <Announce><Say it={message} /></Announce>}
      {error && <Alert kind="error"><Say it={error} /></Alert>}
      {rows && (
        <table class="data">
          <caption>{t("notificationCount", { count: String(rows.length) })}</caption>
          <thead>
            <tr>
              <th scope="col">{t("studentNo")}</th>
              <th scope="col">{t("subject")}</th>
              <th scope="col">{t("attempts")}</th>
              <th scope="col">{t("lastError")}</th>
              <th scope="col">{t("createdAt")}</th>
              <th scope="col"><span class="visually-hidden">{t("actions")}</span></th>
            </tr>
          </thead>
          <tbody>
            {rows.map((n) => (
              <tr key={n.id} data-notification={n.id}>
                <Cell label={t("studentNo")}>{n.student_no}</Cell>
                <Cell label={t("subject")}>{n.subject ?? n.template}</Cell>
                <Cell label={t("attempts")}>{n.attempts}</Cell>
                <Cell label={t("lastError")}>{n.last_error ?? "—"}</Cell>
                <Cell label={t("createdAt")}>{format.dateTime(n.created_at)}</Cell>
                <Cell label={t("actions")}>
                  {canResend && (n.status === "failed" || (n.status === "sent" && n.confirmed === false)) && (
                    <button type="button" aria-label={t("resendTo", { student: n.student_no })}
                      onClick={() => void resend(n)}>
                      {t("resend")}
                    </button>
                  )}
                </Cell>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {rows && rows.length === 0 && <p>{t("noNotifications")}</p>}
    </>
  );
}
