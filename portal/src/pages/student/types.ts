// What the student pages read from the services.

export type ItemState = "missing" | "uploaded" | "verified" | "rejected";

export interface ChecklistItem {
  item: string;
  label: string;
  label_zh: string;
  compulsory: boolean;
  due_by: string | null;
  state: ItemState;
  reason: string | null;
  document?: string | null;
  accepts?: string[];
}

export type RegistrationStatus = "in_progress" | "completed" | "incomplete" | "withdrawn";

export interface MyRegistration {
  student_no: string;
  status: RegistrationStatus;
  intake: { intake_year: number; registration_deadline: string | null; term_start: string | null };
  submitted: boolean;
  submitted_at: string | null;
  form: Record<string, unknown>;
  prefill: Record<string, unknown>;
  checklist: ChecklistItem[];
}

export interface DocumentRow {
  id: string;
  doc_type: string;
  version: number;
  status: "pending" | "verified" | "rejected" | "superseded";
  content_type: string;
  size_bytes: number;
  filename: string | null;
  uploaded_at: string;
  expiry_date: string | null;
  reason: string | null;
  reviewed_at: string | null;
}

export interface PhotoRow {
  id: string;
  version: number;
  status: "pending" | "approved" | "rejected" | "superseded";
  width: number;
  height: number;
  size_bytes: number;
  filename: string | null;
  submitted_at: string;
  reason: string | null;
  reviewed_at: string | null;
}

export interface InboxItem {
  id: string;
  template: string;
  subject: string;
  created_at: string;
  read: boolean;
  emailed: boolean;
}

export interface InboxMessage extends InboxItem {
  text: string;
  html: string;
}

export interface Slot {
  slot_id: string;
  venue: string;
  starts_at: string;
  ends_at: string;
  remaining: number;
}

export interface Card {
  card_no: string;
  state: string;
  surname: string;
  given_names: string;
  chinese_name: string | null;
  programme_code: string;
  programme_name: string;
  issued_at: string;
  expires_on: string;
  collected_at: string | null;
}

export interface MyCard {
  student_no: string;
  status: "awaiting_eligibility" | "issued" | "collected" | "withdrawn";
  card: Card | null;
  slot: Slot | null;
  bring: string[];
}

export interface MySlots {
  booked_slot_id: string | null;
  slots: Slot[];
}
