// The registration form's fields and rules, mirroring the registration service
// (services/registration/src/registration/domain/form.py and hkid.py) so a student
// learns of a mistake before anything is sent.
import type { Key } from "../../i18n";

export interface FormValues {
  surname: string;
  given_names: string;
  chinese_name: string;
  gender: string;
  date_of_birth: string;
  nationality: string;
  residency: string;
  hkid_number: string;
  travel_document_type: string;
  travel_document_number: string;
  dependant_visa: boolean;
  mobile: string;
  personal_email: string;
  addr_line1: string;
  addr_line2: string;
  addr_district: string;
  addr_country: string;
  ec_name: string;
  ec_relationship: string;
  ec_phone: string;
  particulars_changed: boolean;
  change_reason: string;
  declaration: boolean;
}

export type FieldName = keyof FormValues;

/** An error to show next to a field: one of ours (translated) or the server's words. */
export type FieldError = { key: Key } | { text: string };
export type Errors = Partial<Record<FieldName | "_form", FieldError>>;

export const FIELD_ORDER: FieldName[] = [
  "surname", "given_names", "chinese_name", "gender", "date_of_birth", "nationality",
  "residency", "hkid_number", "travel_document_type", "travel_document_number",
  "dependant_visa", "mobile", "personal_email", "addr_line1", "addr_line2", "addr_district",
  "addr_country", "ec_name", "ec_relationship", "ec_phone", "particulars_changed",
  "change_reason", "declaration",
];

export const GENDERS = ["female", "male", "undisclosed"] as const;
export const RESIDENCIES = ["hk_permanent", "hk_non_permanent", "non_local"] as const;
export const TRAVEL_DOCUMENTS = ["passport", "document_of_identity", "exit_entry_permit"] as const;

const str = (v: unknown) => (typeof v === "string" ? v : v == null ? "" : String(v));

export function fromForm(form: Record<string, unknown>): FormValues {
  const address = (form.correspondence_address ?? {}) as Record<string, unknown>;
  const lines = Array.isArray(address.lines) ? (address.lines as unknown[]) : [];
  const contact = (form.emergency_contact ?? {}) as Record<string, unknown>;
  return {
    surname: str(form.surname),
    given_names: str(form.given_names),
    chinese_name: str(form.chinese_name),
    gender: str(form.gender),
    date_of_birth: str(form.date_of_birth),
    nationality: str(form.nationality),
    residency: str(form.residency),
    hkid_number: str(form.hkid_number),
    travel_document_type: str(form.travel_document_type),
    travel_document_number: str(form.travel_document_number),
    dependant_visa: form.dependant_visa === true,
    mobile: str(form.mobile),
    personal_email: str(form.personal_email),
    addr_line1: str(lines[0]),
    addr_line2: str(lines[1]),
    addr_district: str(address.district),
    addr_country: str(address.country_or_region),
    ec_name: str(contact.name),
    ec_relationship: str(contact.relationship),
    ec_phone: str(contact.phone),
    particulars_changed: form.particulars_changed === true,
    change_reason: str(form.change_reason),
    declaration: form.declaration === true,
  };
}

// -- HKID: one or two letters, six digits, a check digit (as the service checks) ----

const HKID_SHAPE = /^([A-Z]{1,2})([0-9]{6})\(?([0-9A])\)?$/;

export function hkidCheckDigit(prefix: string, digits: string): string {
  const padded = prefix.padStart(2, " ");
  const values = [...padded].map((c) => (c === " " ? 36 : c.charCodeAt(0) - 55));
  values.push(...[...digits].map(Number));
  const total = values.reduce((sum, v, i) => sum + v * (9 - i), 0);
  const remainder = (11 - (total % 11)) % 11;
  return remainder === 10 ? "A" : String(remainder);
}

/** The number written as A123456(3), or the reason it is not an HKID number. */
export function checkHkid(raw: string): { ok: string } | { error: Key } {
  const match = HKID_SHAPE.exec(raw.replace(/\s+/g, "").toUpperCase());
  if (!match) return { error: "me_errHkidShape" };
  const [, prefix, digits, given] = match;
  if (hkidCheckDigit(prefix, digits) !== given) return { error: "me_errHkidCheck" };
  return { ok: `${prefix}${digits}(${given})` };
}

const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
const PHONE = /^\+?[0-9]{7,15}$/;
const NATIONALITY = /^[A-Z]{3}$/;
const TRAVEL_NUMBER = /^[A-Z0-9]{5,20}$/;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;

const compact = (v: string) => v.replace(/ /g, "").toUpperCase();
const phone = (v: string) => v.replace(/[ -]/g, "");
const blank = (v: string) => v.trim() === "";
const LIMITS: Partial<Record<FieldName, number>> = {
  surname: 120, given_names: 120, chinese_name: 40, ec_name: 120, addr_line1: 500,
  addr_line2: 500, addr_district: 500, addr_country: 500, ec_relationship: 500,
  change_reason: 500, personal_email: 254,
};

const CORRECTABLE = ["surname", "given_names", "chinese_name", "date_of_birth"] as const;

function sameName(a: unknown, b: unknown): boolean {
  const key = (v: unknown) => str(v).split(/\s+/).filter(Boolean).join(" ").toLowerCase();
  return key(a) === key(b);
}

/** Particulars on record that the form changes (they then need a reason and a document). */
export function changedParticulars(v: FormValues, prefill: Record<string, unknown>): string[] {
  if (!prefill || Object.keys(prefill).length === 0) return [];
  return CORRECTABLE.filter((name) =>
    name === "date_of_birth"
      ? v.date_of_birth.trim() !== str(prefill.date_of_birth)
      : !sameName(v[name], prefill[name]),
  );
}

/**
 * Every problem with ``v``. A draft may leave anything out but what is given must
 * have the right shape (and an address or contact must be whole to be kept); a
 * submission also needs every required field, as the service does.
 */
export function validate(
  v: FormValues,
  mode: "draft" | "submit",
  prefill: Record<string, unknown>,
): Errors {
  const e: Errors = {};
  const need = (name: FieldName, key: Key = "required") => {
    if (!e[name]) e[name] = { key };
  };
  for (const [name, max] of Object.entries(LIMITS) as [FieldName, number][]) {
    const value = v[name];
    if (typeof value === "string" && value.trim().length > max) e[name] = { key: "me_errTooLong" };
  }
  if (!blank(v.date_of_birth) && !ISO_DATE.test(v.date_of_birth.trim())) {
    e.date_of_birth = { key: "me_errDate" };
  }
  if (!blank(v.nationality) && !NATIONALITY.test(compact(v.nationality))) {
    e.nationality = { key: "me_errNationality" };
  }
  if (!blank(v.hkid_number)) {
    const hkid = checkHkid(v.hkid_number);
    if ("error" in hkid) e.hkid_number = { key: hkid.error };
  }
  if (!blank(v.travel_document_number) && !TRAVEL_NUMBER.test(compact(v.travel_document_number))) {
    e.travel_document_number = { key: "me_errTravelNumber" };
  }
  if (!blank(v.mobile) && !PHONE.test(phone(v.mobile))) e.mobile = { key: "me_errPhone" };
  if (!blank(v.personal_email) && !EMAIL.test(v.personal_email.trim())) {
    e.personal_email = { key: "me_errEmail" };
  }
  if (!blank(v.ec_phone) && !PHONE.test(phone(v.ec_phone))) e.ec_phone = { key: "me_errPhone" };

  // An address or a contact is kept whole or not at all.
  const address = [v.addr_line1, v.addr_line2, v.addr_district, v.addr_country];
  if (mode === "submit" || address.some((x) => !blank(x))) {
    if (blank(v.addr_line1)) need("addr_line1");
    if (blank(v.addr_country)) need("addr_country");
  }
  const contact = [v.ec_name, v.ec_relationship, v.ec_phone];
  if (mode === "submit" || contact.some((x) => !blank(x))) {
    if (blank(v.ec_name)) need("ec_name");
    if (blank(v.ec_relationship)) need("ec_relationship");
    if (blank(v.ec_phone)) need("ec_phone");
  }
  if (v.particulars_changed && blank(v.change_reason) && mode === "submit") {
    need("change_reason", "me_errChangeReason");
  }
  if (mode === "draft") return e;

  for (const name of [
    "surname", "given_names", "gender", "date_of_birth", "nationality", "residency", "mobile",
    "personal_email",
  ] as FieldName[]) {
    if (blank(String(v[name]))) need(name);
  }
  const local = v.residency === "hk_permanent" || v.residency === "hk_non_permanent";
  if (local && blank(v.hkid_number)) need("hkid_number", "me_errHkidNeeded");
  if (v.residency === "hk_non_permanent" || v.residency === "non_local") {
    if (blank(v.travel_document_type)) need("travel_document_type", "me_errTravelNeeded");
    if (blank(v.travel_document_number)) need("travel_document_number", "me_errTravelNeeded");
  }
  if (changedParticulars(v, prefill).length > 0 && !v.particulars_changed) {
    need("particulars_changed", "me_errParticularsChanged");
  }
  if (!v.declaration) need("declaration", "me_errDeclaration");
  return e;
}

const orNull = (v: string) => (blank(v) ? null : v.trim());

/** The body the service expects; empty fields are null (which clears them in a draft). */
export function toPayload(v: FormValues): Record<string, unknown> {
  const hkid = blank(v.hkid_number) ? null : checkHkid(v.hkid_number);
  const address = [v.addr_line1, v.addr_line2, v.addr_district, v.addr_country].some((x) => !blank(x))
    ? {
        lines: [v.addr_line1, v.addr_line2].filter((x) => !blank(x)).map((x) => x.trim()),
        district: orNull(v.addr_district),
        country_or_region: v.addr_country.trim(),
      }
    : null;
  const contact = [v.ec_name, v.ec_relationship, v.ec_phone].some((x) => !blank(x))
    ? { name: v.ec_name.trim(), relationship: v.ec_relationship.trim(), phone: v.ec_phone.trim() }
    : null;
  const nonPermanent = v.residency === "hk_non_permanent";
  return {
    surname: orNull(v.surname),
    given_names: orNull(v.given_names),
    chinese_name: orNull(v.chinese_name),
    gender: orNull(v.gender),
    date_of_birth: orNull(v.date_of_birth),
    nationality: blank(v.nationality) ? null : compact(v.nationality),
    residency: orNull(v.residency),
    hkid_number: hkid && "ok" in hkid ? hkid.ok : orNull(v.hkid_number),
    travel_document_type: orNull(v.travel_document_type),
    travel_document_number: blank(v.travel_document_number) ? null : compact(v.travel_document_number),
    dependant_visa: nonPermanent ? v.dependant_visa : null,
    mobile: orNull(v.mobile),
    personal_email: orNull(v.personal_email),
    correspondence_address: address,
    emergency_contact: contact,
    particulars_changed: v.particulars_changed,
    change_reason: v.particulars_changed ? orNull(v.change_reason) : null,
    declaration: v.declaration,
  };
}

/** The form field a server reason belongs to, from a validation error's location. */
export function fieldOf(loc: (string | number)[]): FieldName | "_form" {
  const path = loc[0] === "body" ? loc.slice(1) : loc;
  const [top, sub] = path;
  if (top === "correspondence_address") {
    if (sub === "district") return "addr_district";
    if (sub === "country_or_region") return "addr_country";
    return "addr_line1";
  }
  if (top === "emergency_contact") {
    if (sub === "relationship") return "ec_relationship";
    if (sub === "phone") return "ec_phone";
    return "ec_name";
  }
  return typeof top === "string" && (FIELD_ORDER as string[]).includes(top)
    ? (top as FieldName)
    : "_form";
}

/** The service's 4xx reasons, placed next to their fields. */
export function serverErrors(body: unknown): Errors {
  const e: Errors = {};
  const detail = body && typeof body === "object" ? (body as { detail?: unknown }).detail : null;
  if (Array.isArray(detail)) {
    for (const d of detail as { loc?: (string | number)[]; msg?: string }[]) {
      const field = fieldOf(d.loc ?? []);
      const text = (d.msg ?? "").replace(/^Value error, /, "");
      if (!e[field]) e[field] = { text };
    }
  } else if (detail && typeof detail === "object" && "problems" in detail) {
    for (const p of (detail as { problems: { field: string; reason: string }[] }).problems) {
      const field = fieldOf([p.field]);
      if (!e[field]) e[field] = { text: p.reason };
    }
  } else if (typeof detail === "string") {
    e._form = { text: detail };
  }
  return e;
}
