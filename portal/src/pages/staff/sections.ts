// What each staff role may open, mirroring the services' role checks
// (opr_shared.auth.require_roles in each router).
import type { Key } from "../../i18n";
import type { Claims } from "../../session";

export type Role = Claims["role"];

export interface Section {
  path: string;
  label: Key;
  about: Key;
  roles: readonly Role[];
}

const REGISTRY: readonly Role[] = ["registry_officer", "admin"];
const CARD_OFFICE: readonly Role[] = ["card_office", "admin"];
const STAFF: readonly Role[] = ["registry_officer", "card_office", "admin"];

export const SECTIONS: readonly Section[] = [
  { path: "/staff/roster", label: "navRoster", about: "aboutRoster", roles: REGISTRY },
  { path: "/staff/documents", label: "navDocuments", about: "aboutDocuments", roles: REGISTRY },
  { path: "/staff/photos", label: "navPhotos", about: "aboutPhotos", roles: CARD_OFFICE },
  { path: "/staff/cohort", label: "navCohort", about: "aboutCohort", roles: REGISTRY },
  { path: "/staff/intakes", label: "navIntakes", about: "aboutIntakes", roles: REGISTRY },
  { path: "/staff/cards", label: "navCards", about: "aboutCards", roles: CARD_OFFICE },
  { path: "/staff/notifications", label: "navNotifications", about: "aboutNotifications", roles: STAFF },
  { path: "/staff/dead-letters", label: "navDeadLetters", about: "aboutDeadLetters", roles: ["admin"] },
];

/** Actions inside a section that need more than opening it. */
export const MAY = {
  resendNotification: REGISTRY,
} as const;

export function sectionsFor(role: Role): Section[] {
  return SECTIONS.filter((s) => s.roles.includes(role));
}

export function may(role: Role, action: keyof typeof MAY): boolean {
  return MAY[action].includes(role);
}
