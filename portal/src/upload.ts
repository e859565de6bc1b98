// File uploads with progress: fetch cannot report upload progress, XMLHttpRequest can.
import { ApiError } from "./api";
import { currentToken, signOut } from "./session";

export interface UploadResult<T> {
  status: number;
  body: T;
}

/**
 * POST ``fields`` and ``file`` as multipart/form-data to ``path`` with the signed-in
 * user's token. ``onProgress`` receives whole percentages (0..100) as bytes leave the
 * browser. Resolves with the parsed answer on 2xx; rejects with an ApiError whose
 * ``body`` is the parsed error answer otherwise.
 */
export function uploadFile<T>(
  path: string,
  file: File,
  fields: Record<string, string>,
  onProgress: (percent: number) => void,
): Promise<UploadResult<T>> {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const [name, value] of Object.entries(fields)) form.append(name, value);
    form.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    xhr.setRequestHeader("Accept", "application/json");
    const token = currentToken();
    if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable && event.total > 0) {
        onProgress(Math.min(100, Math.round((event.loaded / event.total) * 100)));
      }
    };
    xhr.upload.onload = () => onProgress(100);
    xhr.onerror = () => reject(new ApiError(0, "network error"));
    xhr.onabort = () => reject(new ApiError(0, "upload cancelled"));
    xhr.onload = () => {
      let parsed: unknown = null;
      try {
        parsed = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        parsed = xhr.responseText;
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(100);
        resolve({ status: xhr.status, body: parsed as T });
        return;
      }
      if (xhr.status === 401 && token) signOut("expired");
      reject(new ApiError(xhr.status, errorMessage(parsed, xhr.status), parsed));
    };
    onProgress(0);
    xhr.send(form);
  });
}

function errorMessage(body: unknown, status: number): string {
  if (body && typeof body === "object" && "detail" in body) {
    const detail = (body as { detail: unknown }).detail;
    if (typeof detail === "string") return detail;
    if (detail && typeof detail === "object" && "message" in detail) {
      return String((detail as { message: unknown }).message);
    }
  }
  return `HTTP ${status}`;
}
