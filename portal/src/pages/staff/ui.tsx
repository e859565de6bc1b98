// Small helpers shared by the staff pages.
import type { ComponentChildren } from "preact";
import { useContext } from "preact/hooks";
import { ApiError } from "../../api";
import { App, useT } from "../../context";
import type { Key } from "../../i18n";

/** A message kept as its key, so it follows a change of language. */
export interface Said {
  key: Key;
  vars?: Record<string, string | Said>;
}

export function said(key: Key, vars?: Record<string, string | Said>): Said {
  return { key, vars };
}

function spoken(t: ReturnType<typeof useT>, it: Said): string {
  const vars: Record<string, string> = {};
  for (const [name, value] of Object.entries(it.vars ?? {})) {
    vars[name] = typeof value === "string" ? value : spoken(t, value);
  }
  return t(it.key, vars);
}

export function Say(props: { it: Said | null | undefined }) {
  const t = useT();
  return props.it ? <>{spoken(t, props.it)}</> : null;
}

export function describe(e: unknown): string {
  return e instanceof ApiError ? e.detail : String(e);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Dates and times as Hong Kong sees them, in the page's language. */
export function useFormat(): { dateTime: (iso: string | null | undefined) => string; date: (iso: string | null | undefined) => string } {
  const { language } = useContext(App);
  const locale = language === "zh-Hant" ? "zh-HK" : "en-GB";
  return {
    dateTime: (iso) =>
      iso
        ? new Intl.DateTimeFormat(locale, {
            dateStyle: "medium",
            timeStyle: "short",
            timeZone: "Asia/Hong_Kong",
          }).format(new Date(iso))
        : "—",
    date: (iso) =>
      iso
        ? new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeZone: "UTC" }).format(
            new Date(iso.length === 10 ? `${iso}T00:00:00Z` : iso),
          )
        : "—",
  };
}

/** A polite live region: what just happened, announced to screen readers. */
export function Announce(props: { children: ComponentChildren; id?: string }) {
  return (
    <p class="announce" role="status" aria-live="polite" id={props.id} tabIndex={props.id ? -1 : undefined}>
      {props.children}
    </p>
  );
}

/** A table cell that shows its column name above the value on narrow screens. */
export function Cell(props: { label: string; children: ComponentChildren; class?: string }) {
  return (
    <td data-label={props.label} class={props.class}>
      {props.children}
    </td>
  );
}

/** A labelled input (or text area) of a staff form, with its problem said in the page's language. */
export function StaffField(props: {
  id: string;
  label: Key;
  value: string;
  onInput: (value: string) => void;
  problem?: Said | null;
  type?: string;
  inputMode?: "numeric" | "text";
  min?: number;
}) {
  const t = useT();
  const { id, problem } = props;
  const described = {
    "aria-invalid": problem ? ("true" as const) : undefined,
    "aria-describedby": problem ? `${id}-error` : undefined,
  };
  const read = (e: Event) => props.onInput((e.currentTarget as HTMLInputElement | HTMLTextAreaElement).value);
  return (
    <div class="field">
      <label for={id}>{t(props.label)}</label>
      {props.type === "textarea" ? (
        <textarea id={id} rows={2} value={props.value} {...described} onInput={read} />
      ) : (
        <input id={id} type={props.type ?? "text"} value={props.value} min={props.min}
          inputMode={props.inputMode} {...described} onInput={read} />
      )}
      {problem && <p class="field-error" id={`${id}-error`}><Say it={problem} /></p>}
    </div>
  );
}
