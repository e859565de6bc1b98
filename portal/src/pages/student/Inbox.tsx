// The student's messages: every milestone e-mail, newest first, read and unread.
import { useRef, useState } from "preact/hooks";
import { api } from "../../api";
import { Alert } from "../../components";
import { useT } from "../../context";
import { Announcer, errorDetail, useDates, usePoll } from "./shared";
import type { InboxItem, InboxMessage } from "./types";

export function InboxPage() {
  const t = useT();
  const { moment } = useDates();
  const [items, setItems] = useState<InboxItem[] | null>(null);
  const [open, setOpen] = useState<InboxMessage | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [announcement, setAnnouncement] = useState("");
  const known = useRef<Set<string> | null>(null);
  const reader = useRef<HTMLHeadingElement>(null);

  usePoll(async () => {
    try {
      const next = await api<InboxItem[]>("/api/notifier/me/notifications");
      const fresh = known.current ? next.filter((m) => !known.current!.has(m.id)) : [];
      if (fresh.length) setAnnouncement(t("me_newMessages", { n: String(fresh.length) }));
      known.current = new Set(next.map((m) => m.id));
      setItems(next);
      setError(null);
    } catch (e) {
      setError(errorDetail(e));
    }
  });

  async function show(item: InboxItem) {
    try {
      const message = await api<InboxMessage>(`/api/notifier/me/notifications/${item.id}`);
      setOpen(message);
      requestAnimationFrame(() => reader.current?.focus());
      if (!item.read) {
        const marked = await api<InboxItem>(`/api/notifier/me/notifications/${item.id}/read`, { method: "POST" });
        setItems((list) => (list ?? []).map((m) => (m.id === marked.id ? marked : m)));
      }
    } catch (e) {
      setError(errorDetail(e));
    }
  }

  const unread = (items ?? []).filter((m) => !m.read).length;
  return (
    <>
      <h1>{t("me_inboxTitle")}</h1>
      <Announcer message={announcement} />
      {error && <Alert kind="error">{t("error", { detail: error })}</Alert>}
      {items && <p>{t("me_inboxCount", { n: String(items.length), unread: String(unread) })}</p>}
      {items && items.length === 0 && <p>{t("me_inboxEmpty")}</p>}
      <div class="inbox">
        {items && items.length > 0 && (
          <ul class="message-list" aria-label={t("me_inboxTitle")}>
            {items.map((m) => (
              <li key={m.id} data-template={m.template} class={m.read ? "read" : "unread"}>
                <button type="button" class="message-button" aria-pressed={open?.id === m.id}
                  onClick={() => show(m)}>
                  <span class="message-subject">
                    {!m.read && <span class="badge">{t("me_unread")}</span>} {m.subject}
                  </span>
                  <span class="hint">{moment(m.created_at)}{m.emailed ? ` · ${t("me_emailed")}` : ""}</span>
                </button>
              </li>
            ))}
          </ul>
        )}
        {open && (
          <article class="card message" aria-labelledby="message-heading">
            <h2 id="message-heading" ref={reader} tabIndex={-1}>{open.subject}</h2>
            <p class="hint">{moment(open.created_at)}</p>
            <div class="message-body">{open.text}</div>
            <button type="button" class="secondary" onClick={() => setOpen(null)}>{t("me_closeMessage")}</button>
          </article>
        )}
      </div>
    </>
  );
}
