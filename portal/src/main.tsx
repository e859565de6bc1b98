import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { Alert } from "./components";
import { App as AppContext } from "./context";
import { initialLanguage, type Language, rememberLanguage, translate } from "./i18n";
import { ActivatePage } from "./pages/Activate";
import { HomePage } from "./pages/Home";
import { homeFor, LoginPage } from "./pages/Login";
import { StaffArea } from "./pages/staff";
import { StudentArea } from "./pages/student";
import { currentClaims, onSessionChange, signOut } from "./session";
import "./styles.css";

function Root() {
  const [language, setLanguage] = useState<Language>(initialLanguage());
  const [path, setPath] = useState(location.pathname);
  const [notice, setNotice] = useState<string | null>(null);
  const t = (key: Parameters<typeof translate>[1], vars?: Record<string, string>) =>
    translate(language, key, vars);

  useEffect(() => rememberLanguage(language), [language]);
  useEffect(() => {
    const onPop = () => setPath(location.pathname);
    addEventListener("popstate", onPop);
    return () => removeEventListener("popstate", onPop);
  }, []);

  function navigate(to: string) {
    history.pushState(null, "", to);
    setPath(new URL(to, location.origin).pathname);
    // Move focus to the new page's heading for screen-reader and keyboard users.
    requestAnimationFrame(() => document.getElementById("main")?.focus());
  }

  useEffect(
    () =>
      onSessionChange((reason) => {
        if (reason === "expired") setNotice(t("sessionExpired"));
        if (reason !== "signed-in") navigate("/login");
      }),
    [language],
  );

  const claims = currentClaims();
  let page;
  if (path === "/activate") page = <ActivatePage />;
  else if (path === "/login" || !claims) page = <LoginPage />;
  else if (path === "/" ) page = <Redirect to={homeFor(claims.role)} navigate={navigate} />;
  else if (within(path, "/me") && claims.role === "student") page = <StudentArea path={path} />;
  else if (within(path, "/staff") && claims.role !== "student")
    page = <StaffArea path={path} claims={claims} />;
  else if (within(path, "/me") || within(path, "/staff")) page = <HomePage />;
  else page = <Alert kind="error">{t("notFound")}</Alert>;

  return (
    <AppContext.Provider value={{ language, navigate }}>
      <a class="skip-link" href="#main">{t("skipToContent")}</a>
      <header class="topbar">
        <span class="brand">{t("appTitle")}</span>
        <nav aria-label={t("language")}>
          <button type="button" class="link" lang={language === "en" ? "zh-Hant" : "en"}
            onClick={() => setLanguage(language === "en" ? "zh-Hant" : "en")}>
            {t("switchTo")}
          </button>
          {claims && (
            <button type="button" class="link" onClick={() => signOut()}>{t("signOut")}</button>
          )}
        </nav>
      </header>
      <main id="main" tabIndex={-1}>
        {notice && <Alert kind="info">{notice}</Alert>}
        {page}
      </main>
    </AppContext.Provider>
  );
}

function within(path: string, area: string): boolean {
  return path === area || path.startsWith(`${area}/`);
}

function Redirect(props: { to: string; navigate: (to: string) => void }) {
  useEffect(() => props.navigate(props.to), [props.to]);
  return null;
}

render(<Root />, document.getElementById("app")!);
