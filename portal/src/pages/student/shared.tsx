// What the student pages share: the section navigation, polling with a live
// announcement, dates in Hong Kong time, and select/checkbox fields.
import type { ComponentChildren } from "preact";
import { useContext, useEffect, useRef } from "preact/hooks";
import { ApiError } from "../../api";
import { App, useNavigate, useT } from "../../context";
import type { Key } from "../../i18n";

/** How often the student pages ask again: changes are made by staff and other services. */
export const REFRESH_MS = 5_000;

const SECTIONS: { path: string; label: Key }[] = [
  { path: "/me", label: "me_navDashboard" },
  { path: "/me/form", label: "me_navForm" },
  { path: "/me/documents", label: "me_navDocuments" },
  { path: "/me/inbox", label: "me_navInbox" },
  { path: "/me/card", label: "me_navCard" },
];

export function StudentNav(props: { path: string }) {
  const t = useT();
  return (
    <nav class="student-nav" aria-label={t("studentNav")}>
      <ul>
        {SECTIONS.map((s) => (
          <li key={s.path}>
            <AppLink href={s.path} current={props.path === s.path}>
              {t(s.label)}
            </AppLink>
          </li>
        ))}
      </ul>
    </nav>
  );
}

/** A real link (works with the keyboard, opens in a new tab) that navigates in place. */
export function AppLink(props: { href: string; current?: boolean; children: ComponentChildren }) {
  const navigate = useNavigate();
  return (
    <a
      href={props.href}
      aria-current={props.current ? "page" : undefined}
      onClick={(e) => {
        if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        navigate(props.href);
      }}
    >
      {props.children}
    </a>
  );
}

/** While a record is still on its way (just admitted), ask again this soon. */
export const SOON_MS = 1_000;

/** Run ``load`` now and every REFRESH_MS while the page is shown; ``load`` may answer
 * a shorter wait for the next time. */
export function usePoll(
  load: (first: boolean) => Promise<number | void>,
  deps: unknown[] = [],
): void {
  const latest = useRef(load);
  latest.current = load;
  useEffect(() => {
    let stopped = false;
    let first = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    async function tick() {
      let wait = REFRESH_MS;
      try {
        wait = (await latest.current(first)) ?? REFRESH_MS;
      } finally {
        first = false;
        if (!stopped) timer = setTimeout(tick, wait);
      }
    }
    void tick();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    };
  }, deps);
}

/** A polite live region: screen readers announce what is put in it. */
export function Announcer(props: { message: string }) {
  return (
    <p class="visually-hidden" aria-live="polite" data-testid="announcer">
      {props.message}
    </p>
  );
}

export function useDates() {
  const { language } = useContext(App);
  const locale = language === "en" ? "en-GB" : "zh-HK";
  return {
    locale,
    day: (iso: string) =>
      new Date(iso.length === 10 ? `${iso}T00:00:00+08:00` : iso).toLocaleDateString(locale, {
        dateStyle: "long",
        timeZone: "Asia/Hong_Kong",
      }),
    moment: (iso: string) =>
      new Date(iso).toLocaleString(locale, {
        dateStyle: "medium",
        timeStyle: "short",
        timeZone: "Asia/Hong_Kong",
      }),
    time: (iso: string) =>
      new Date(iso).toLocaleTimeString(locale, {
        hour: "2-digit",
        minute: "2-digit",
        timeZone: "Asia/Hong_Kong",
      }),
  };
}

export function errorDetail(e: unknown): string {
  return e instanceof ApiError ? e.detail : String(e);
}

interface ChoiceFieldProps {
  id: string;
  label: string;
  value: string;
  options: { value: string; label: string }[];
  onChange: (value: string) => void;
  onBlur?: () => void;
  error?: string | null;
  hint?: string;
  required?: boolean;
  placeholder?: string;
}

export function SelectField(props: ChoiceFieldProps) {
  const hintId = props.hint ? `${props.id}-hint` : undefined;
  const errorId = props.error ? `${props.id}-error` : undefined;
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      {props.hint && <p class="hint" id={hintId}>{props.hint}</p>}
      <select
        id={props.id}
        name={props.id}
        value={props.value}
        required={props.required}
        aria-invalid={props.error ? "true" : undefined}
        aria-describedby={[hintId, errorId].filter(Boolean).join(" ") || undefined}
        onChange={(e) => props.onChange((e.currentTarget as HTMLSelectElement).value)}
        onBlur={props.onBlur}
      >
        <option value="">{props.placeholder ?? "—"}</option>
        {props.options.map((o) => (
          <option key={o.value} value={o.value}>{o.label}</option>
        ))}
      </select>
      {props.error && <p class="field-error" id={errorId}>{props.error}</p>}
    </div>
  );
}

export function CheckField(props: {
  id: string;
  label: string;
  checked: boolean;
  onChange: (checked: boolean) => void;
  error?: string | null;
  hint?: string;
}) {
  const hintId = props.hint ? `${props.id}-hint` : undefined;
  const errorId = props.error ? `${props.id}-error` : undefined;
  return (
    <div class="field field-check">
      <div class="check-row">
        <input
          type="checkbox"
          id={props.id}
          name={props.id}
          checked={props.checked}
          aria-invalid={props.error ? "true" : undefined}
          aria-describedby={[hintId, errorId].filter(Boolean).join(" ") || undefined}
          onChange={(e) => props.onChange((e.currentTarget as HTMLInputElement).checked)}
        />
        <label for={props.id}>{props.label}</label>
      </div>
      {props.hint && <p class="hint" id={hintId}>{props.hint}</p>}
      {props.error && <p class="field-error" id={errorId}>{props.error}</p>}
    </div>
  );
}
