// The signed-in user's access token, kept for this browser tab only.
const KEY = "opr.token";

export interface Claims {
  sub: string;
  role: "student" | "registry_officer" | "card_office" | "admin";
  student_no?: string;
  exp: number;
}

type Listener = (reason: "signed-in" | "signed-out" | "expired") => void;
const listeners = new Set<Listener>();

export function onSessionChange(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function currentToken(): string | null {
  const token = sessionStorage.getItem(KEY);
  const claims = token ? decode(token) : null;
  if (!token || !claims || claims.exp * 1000 <= Date.now()) return null;
  return token;
}

export function currentClaims(): Claims | null {
  const token = currentToken();
  return token ? decode(token) : null;
}

export function signIn(token: string): void {
  sessionStorage.setItem(KEY, token);
  listeners.forEach((l) => l("signed-in"));
}

export function signOut(reason: "signed-out" | "expired" = "signed-out"): void {
  sessionStorage.removeItem(KEY);
  listeners.forEach((l) => l(reason));
}

function decode(token: string): Claims | null {
  // Only to show who is signed in; every service verifies the signature itself.
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part)) as Claims;
  } catch {
    return null;
  }
}
