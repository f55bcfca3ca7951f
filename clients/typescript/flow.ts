// A phone's whole flow through photocluster, as a TypeScript team writes it: types from
// openapi-typescript (schema.d.ts, generated from /openapi.json), calls through
// openapi-fetch, compiled with tsc --strict --noUncheckedIndexedAccess, no casts.
// Run: node build/flow.js API_URL TOKEN USER PHOTO.jpg OTHER.jpg (prints one JSON line).
import { readFileSync } from "node:fs";
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type Responses = paths["/v1/users/{user_id}/uploads"]["post"]["responses"];
// Every error body the upload route declares, whatever its status.
type UploadFailure = {
  [S in keyof Responses]: Responses[S] extends { content: { "application/json": infer B } }
    ? B extends { error: infer E }
      ? E
      : never
    : never;
}[keyof Responses];
export type Ticket = components["schemas"]["UploadTicket"];

// Every error any route declares: a union over every code of the API.
type ErrorBodies<R> = {
  [S in keyof R]: S extends 200 | 201 | 204 | 304
    ? never
    : R[S] extends { content: { "application/json": infer B } }
      ? B
      : never;
}[keyof R];
type Operations = {
  [P in keyof paths]: {
    [M in keyof paths[P]]: paths[P][M] extends { responses: infer R } ? ErrorBodies<R> : never;
  }[keyof paths[P]];
}[keyof paths];
type AnyFailure = Extract<Operations, { error: unknown }>["error"];

// What the app tells its user, for every code the API has: exhaustive, like whatToDo.
export function explain(error: AnyFailure): string {
  switch (error.code) {
    case "unauthorized":
      return "sign in again";
    case "forbidden":
      return "not your library";
    case "unknown_image":
      return `no photo ${error.details?.[0]?.image_id ?? ""}`;
    case "image_not_ready":
      return "still processing";
    case "library_full":
      return "the library is full";
    case "payload_too_large":
    case "too_large":
      return "too large";
    case "malformed_json":
    case "invalid_request":
    case "unknown_query_parameter":
    case "repeated_query_parameter":
    case "invalid_id":
    case "invalid_cursor":
    case "invalid_decision":
      return "a bug in this app";
    case "invalid_thresholds":
      return "thresholds must rise from low to high";
    case "threshold_below_floor":
      return `the lowest threshold here is ${error.details?.[0]?.floor ?? "higher"}`;
    case "too_many_decisions":
      return "too many pairs marked";
    case "invalid_filename":
      return "rename the file";
    case "unsupported_type":
      return "not a photo we accept";
    case "throttled":
    case "internal_error":
    case "store_unavailable":
    case "storage_unavailable":
    case "uploads_not_configured":
      return "retry later";
    default: {
      const unhandled: never = error;
      return fail("unhandled code", unhandled);
    }
  }
}

const [api = "", token = "", user = "", photoPath = "", otherPath = ""] = process.argv.slice(2);
const client = createClient<paths>({
  baseUrl: api,
  headers: { Authorization: `Bearer ${token}` },
});
const ids = { params: { path: { user_id: user } } };

function fail(what: string, detail: unknown): never {
  throw new Error(`${what}: ${JSON.stringify(detail)}`);
}

// Every code the upload route can answer with, handled: a code the API adds to the route
// without this app handling it is a compile error (the never in the default).
function whatToDo(error: UploadFailure): string {
  switch (error.code) {
    case "invalid_request":
    case "unknown_query_parameter":
    case "repeated_query_parameter":
      return `fix ${error.details?.[0]?.loc.join(".") ?? "the request"}`;
    case "invalid_id":
    case "invalid_filename":
      return "rename the file";
    case "unsupported_type":
      return "not a photo we accept";
    case "too_large":
    case "payload_too_large":
      return "too large";
    case "library_full":
      return "the library is full";
    case "throttled":
    case "store_unavailable":
    case "uploads_not_configured":
    case "internal_error":
      return "retry later";
    case "unauthorized":
      return "sign in again";
    case "forbidden":
      return "not this user's library";
    case "malformed_json":
      return "a bug in this app";
    default: {
      const unhandled: never = error;
      return fail("unhandled code", unhandled);
    }
  }
}

async function upload(filename: string, bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const body = { filename, content_type: "image/jpeg", size: bytes.length };
  const { data, error, response } = await client.POST("/v1/users/{user_id}/uploads", {
    ...ids,
    body,
  });
  if (error !== undefined) return fail(`upload refused (${response.status})`, whatToDo(error.error));
  const put = await fetch(data.url, { method: data.method, headers: data.headers, body: bytes });
  if (!put.ok) fail("S3 refused the PUT", put.status);
  return data.image_id;
}

async function untilReady(imageId: string): Promise<void> {
  for (let attempt = 0; attempt < 600; attempt++) {
    const { data, error } = await client.GET("/v1/users/{user_id}/images/{image_id}", {
      params: { path: { user_id: user, image_id: imageId } },
    });
    if (error !== undefined) fail("status", error);
    if (data.status === "ready") return;
    if (data.status === "failed") fail("failed", data.error);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  fail("never ready", imageId);
}

const photo = new Uint8Array(readFileSync(photoPath));
const other = new Uint8Array(readFileSync(otherPath));
const a = await upload("IMG_0001.jpg", photo);
const b = await upload("IMG_0002.jpg", other);
await untilReady(a);
await untilReady(b);

// Groups, a page at a time, and the ETag: a 304 has no body, so check it before data.
const first = await client.GET("/v1/users/{user_id}/clusters", {
  params: { path: { user_id: user }, query: { limit: 1 } },
});
if (first.error !== undefined) fail("clusters", first.error);
const etag = first.response.headers.get("ETag") ?? fail("no ETag", null);
const again = await client.GET("/v1/users/{user_id}/clusters", {
  params: { path: { user_id: user }, query: { limit: 1 }, header: { "If-None-Match": etag } },
});
const notModified = again.response.status === 304;
const tiers = first.data.tiers.map((tier) => [tier.name, tier.threshold, tier.groups.length]);

const similar = await client.GET("/v1/users/{user_id}/images/{image_id}/similar", {
  params: { path: { user_id: user, image_id: a }, query: { k: 5 } },
});
if (similar.error !== undefined) fail("similar", similar.error);

// "Not similar", its typed refusal for a photo the user does not have, and its undo.
const decision = { ...ids, body: { image_ids: [a, b] } };
const marked = await client.PUT("/v1/users/{user_id}/decisions/not-similar", decision);
if (marked.error !== undefined) fail("mark", marked.error);
const unknown = await client.PUT("/v1/users/{user_id}/decisions/not-similar", {
  ...ids,
  body: { image_ids: [a, "never-uploaded.jpg"] },
});
let unknownId = "";
if (unknown.error !== undefined && unknown.error.error.code === "unknown_image") {
  unknownId = unknown.error.error.details?.[0]?.image_id ?? "";
}
const undone = await client.DELETE("/v1/users/{user_id}/decisions/not-similar", decision);
if (undone.error !== undefined) fail("undo", undone.error);

const deleted = await client.DELETE("/v1/users/{user_id}/images/{image_id}", {
  params: { path: { user_id: user, image_id: b } },
});
const gone = await client.GET("/v1/users/{user_id}/images/{image_id}", {
  params: { path: { user_id: user, image_id: b } },
});

const anonymous = createClient<paths>({ baseUrl: api });
const refused = await anonymous.GET("/v1/users/{user_id}/stats", ids);
const refusedCode = refused.error?.error.code ?? "";
const told = refused.error !== undefined ? explain(refused.error.error) : "";

console.log(
  JSON.stringify({
    uploaded: [a, b],
    tiers,
    notModified,
    neighbours: similar.data.neighbors.map((n) => n.image_id),
    marked: marked.data.changed,
    unknownId,
    undone: undone.data.changed,
    deleted: deleted.response.status,
    gone: gone.response.status,
    refusedCode,
    told,
  }),
);
