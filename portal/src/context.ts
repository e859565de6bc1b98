import { createContext } from "preact";
import { useContext } from "preact/hooks";
import { type Key, type Language, translate } from "./i18n";

export interface AppContext {
  language: Language;
  navigate: (path: string) => void;
}

export const App = createContext<AppContext>({ language: "en", navigate: () => undefined });

/** The translate function of the current language. */
export function useT(): (key: Key, vars?: Record<string, string>) => string {
  const { language } = useContext(App);
  return (key, vars) => translate(language, key, vars);
}

export function useNavigate(): (path: string) => void {
  return useContext(App).navigate;
}
