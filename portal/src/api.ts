// Calls to the services through the one origin, with the signed-in user's token.
import { currentToken, signOut } from "./session";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    /** The parsed error answer, for pages that show reasons next to fields. */
    readonly body: unknown = null,
  ) {
    super(detail);
  }
}

export function readableDetail(body: unknown, status: number): string {
  if (body && typeof body === "object" && "detail" in body) {
    const detail = (body as { detail: unknown }).detail;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      // FastAPI validation errors: "field: message" for each.
      return detail
        .map((d: { loc?: unknown[]; msg?: string }) =>
          `${(d.loc ?? []).filter((p) => p !== "body").join(".")}: ${d.msg ?? ""}`,
        )
        .join("; ");
    }
  }
  return `HTTP ${status}`;
}

export async function api<T>(
  path: string,
  options: { method?: string; body?: unknown; auth?: boolean } = {},
): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  const token = currentToken();
  if (options.auth !== false && token) headers.Authorization = `Bearer ${token}`;
  let body: BodyInit | undefined;
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.body);
  }
  const response = await fetch(path, { method: options.method ?? "GET", headers, body });
  const text = await response.text();
  const parsed: unknown = text ? JSON.parse(text) : null;
  if (!response.ok) {
    if (response.status === 401 && token) signOut("expired");
    throw new ApiError(response.status, readableDetail(parsed, response.status), parsed);
  }
  return parsed as T;
}
