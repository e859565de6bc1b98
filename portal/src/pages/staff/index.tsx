// The staff console, all under /staff; what each role sees follows its permissions.
import { Alert } from "../../components";
import { useNavigate, useT } from "../../context";
import type { Claims } from "../../session";
import { HomePage } from "../Home";
import { CardsPage } from "./Cards";
import { CohortPage } from "./Cohort";
import { DeadLettersPage } from "./DeadLetters";
import { DocumentQueuePage, PhotoQueuePage } from "./Queues";
import { IntakesPage } from "./Intakes";
import { NotificationsPage } from "./Notifications";
import { RosterPage } from "./Roster";
import { type Section, SECTIONS, sectionsFor } from "./sections";

function StaffNav(props: { sections: Section[]; path: string }) {
  const t = useT();
  const navigate = useNavigate();
  return (
    <nav class="staff-nav" aria-label={t("staffNav")}>
      <ul>
        <li>
          <a href="/staff" aria-current={props.path === "/staff" ? "page" : undefined}
            onClick={(e) => { e.preventDefault(); navigate("/staff"); }}>
            {t("navOverview")}
          </a>
        </li>
        {props.sections.map((s) => (
          <li key={s.path}>
            <a href={s.path} aria-current={props.path === s.path ? "page" : undefined}
              onClick={(e) => { e.preventDefault(); navigate(s.path); }}>
              {t(s.label)}
            </a>
          </li>
        ))}
      </ul>
    </nav>
  );
}

function Overview(props: { sections: Section[] }) {
  const t = useT();
  const navigate = useNavigate();
  return (
    <>
      <HomePage />
      <h2>{t("staffSections")}</h2>
      <ul class="section-list">
        {props.sections.map((s) => (
          <li key={s.path} class="card">
            <a href={s.path} onClick={(e) => { e.preventDefault(); navigate(s.path); }}>
              {t(s.label)}
            </a>
            <p>{t(s.about)}</p>
          </li>
        ))}
      </ul>
    </>
  );
}

const PAGES: Record<string, (props: { claims: Claims }) => preact.JSX.Element> = {
  "/staff/roster": () => <RosterPage />,
  "/staff/documents": () => <DocumentQueuePage />,
  "/staff/photos": () => <PhotoQueuePage />,
  "/staff/cohort": () => <CohortPage />,
  "/staff/intakes": () => <IntakesPage />,
  "/staff/cards": () => <CardsPage />,
  "/staff/notifications": (p) => <NotificationsPage role={p.claims.role} />,
  "/staff/dead-letters": () => <DeadLettersPage />,
};

export function StaffArea(props: { path: string; claims: Claims }) {
  const t = useT();
  const allowed = sectionsFor(props.claims.role);
  const path = props.path.replace(/\/+$/, "") || "/staff";
  let content;
  if (path === "/staff") content = <Overview sections={allowed} />;
  else if (allowed.some((s) => s.path === path)) content = PAGES[path]({ claims: props.claims });
  else if (SECTIONS.some((s) => s.path === path))
    content = <Alert kind="error">{t("notAllowed")}</Alert>;
  else content = <Alert kind="error">{t("notFound")}</Alert>;
  return (
    <div class="staff">
      <StaffNav sections={allowed} path={path} />
      <div class="staff-page">{content}</div>
    </div>
  );
}
