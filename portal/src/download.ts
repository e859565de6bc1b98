// Requests the JSON helper in api.ts does not cover: raw bodies (CSV rosters), files
// read as blobs (to show with a blob: URL) and downloads saved under the server's name.
import { ApiError } from "./api";
import { currentToken, signOut } from "./session";

function detailOf(body: unknown, status: number): string {
  if (body && typeof body === "object" && "detail" in body) {
    const detail = (body as { detail: unknown }).detail;
    if (typeof detail === "string") return detail;
    if (detail && typeof detail === "object" && "message" in detail) {
      return String((detail as { message: unknown }).message);
    }
    if (Array.isArray(detail)) {
      return detail
        .map((d: { loc?: unknown[]; msg?: string }) => `${(d.loc ?? []).slice(1).join(".")}: ${d.msg ?? ""}`)
        .join("; ");
    }
  }
  return `HTTP ${status}`;
}

async function authorised(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const token = currentToken();
  if (token) headers.set("Authorization", `Bearer ${token}`);
  const response = await fetch(path, { ...init, headers });
  if (!response.ok) {
    const text = await response.text();
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = null;
    }
    if (response.status === 401 && token) signOut("expired");
    throw new ApiError(response.status, detailOf(parsed, response.status));
  }
  return response;
}

/** Send a body as it is (e.g. text/csv) and read the JSON answer with its status. */
export async function sendRaw<T>(
  path: string,
  body: string,
  contentType: string,
  method = "POST",
): Promise<{ status: number; body: T }> {
  const response = await authorised(path, {
    method,
    body,
    headers: { "Content-Type": contentType, Accept: "application/json" },
  });
  return { status: response.status, body: (await response.json()) as T };
}

/** A file behind the API, with the signed-in user's token, as a Blob. */
export async function fetchBlob(path: string): Promise<Blob> {
  return (await authorised(path)).blob();
}

function filenameOf(response: Response, fallback: string): string {
  const disposition = response.headers.get("Content-Disposition") ?? "";
  const found = /filename="?([^";]+)"?/i.exec(disposition);
  return found ? found[1] : fallback;
}

/** Download a file behind the API and hand it to the browser to save; its name is returned. */
export async function downloadFile(path: string, fallback: string): Promise<string> {
  const response = await authorised(path);
  const name = filenameOf(response, fallback);
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return name;
}
