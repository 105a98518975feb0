// ZITADEL's Node SDK (@zitadel/client) against a running Tessera, used exactly as its README shows:
// createServerTransport speaks gRPC over HTTP/2, createClientTransport speaks gRPC-Web.
// Driven by tests/grpc/test_node_sdk.py, which starts the server and sets:
//   TESSERA_GRPC_URL  http://127.0.0.1:<grpc port>   (gRPC, h2c)
//   TESSERA_HTTP_URL  http://127.0.0.1:<http port>   (gRPC-Web)
//   TESSERA_PAT       the administrator's personal access token
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";

import { Code, ConnectError } from "@connectrpc/connect";
import { createServerTransport } from "@zitadel/client/node";
import { createSessionServiceClient, createSettingsServiceClient, createUserServiceClient } from "@zitadel/client/v2";
import { createClientTransport } from "@zitadel/client/web";
import { CredentialsCheckErrorSchema, ErrorDetailSchema } from "@zitadel/proto/zitadel/message_pb";

const { TESSERA_GRPC_URL, TESSERA_HTTP_URL, TESSERA_PAT } = process.env;
assert.ok(TESSERA_GRPC_URL && TESSERA_HTTP_URL && TESSERA_PAT, "TESSERA_GRPC_URL, TESSERA_HTTP_URL and TESSERA_PAT must be set");

const PASSWORD = "Test-Passw0rd!";
const WRONG_PASSWORD_ID = "COMMAND-3M0fs";

const transports = {
  "gRPC (createServerTransport)": (token) => createServerTransport(token, { baseUrl: TESSERA_GRPC_URL }),
  "gRPC-Web (createClientTransport)": (token) => createClientTransport(token, { baseUrl: TESSERA_HTTP_URL }),
};

async function failure(promise) {
  try {
    await promise;
  } catch (err) {
    return ConnectError.from(err);
  }
  assert.fail("the call succeeded but should have failed");
}

function errorIds(err) {
  return [...err.findDetails(ErrorDetailSchema), ...err.findDetails(CredentialsCheckErrorSchema)].map((d) => d.id);
}

for (const [name, transportFor] of Object.entries(transports)) {
  test(`user and session lifecycle over ${name}`, async () => {
    const transport = transportFor(TESSERA_PAT);
    const users = createUserServiceClient(transport);
    const sessions = createSessionServiceClient(transport);

    const username = `node-${randomUUID().slice(0, 8)}`;
    const added = await users.addHumanUser({
      username,
      profile: { givenName: "Node", familyName: "Client" },
      email: { email: `${username}@example.com`, verification: { case: "isVerified", value: true } },
      passwordType: { case: "password", value: { password: PASSWORD, changeRequired: false } },
    });
    assert.ok(added.userId, "AddHumanUser returns the user ID");

    const fetchedUser = await users.getUserByID({ userId: added.userId });
    assert.equal(fetchedUser.user?.username, username);

    const created = await sessions.createSession({
      checks: {
        user: { search: { case: "loginName", value: username } },
        password: { password: PASSWORD },
      },
    });
    assert.ok(created.sessionId && created.sessionToken, "CreateSession returns an ID and a token");
    assert.ok(created.details?.sequence > 0n);

    const got = await sessions.getSession({ sessionId: created.sessionId });
    assert.equal(got.session?.id, created.sessionId);
    assert.equal(got.session?.factors?.user?.id, added.userId);
    assert.ok(got.session?.factors?.user?.loginName?.startsWith(username));
    assert.ok(got.session?.factors?.password?.verifiedAt, "the password check is recorded");

    const listed = await sessions.listSessions({
      queries: [{ query: { case: "idsQuery", value: { ids: [created.sessionId] } } }],
    });
    assert.deepEqual(listed.sessions.map((s) => s.id), [created.sessionId]);
    assert.equal(listed.details?.totalResult, 1n);

    const device = new TextEncoder().encode("node-sdk");
    const updated = await sessions.setSession({ sessionId: created.sessionId, metadata: { device } });
    assert.ok(updated.sessionToken && updated.sessionToken !== created.sessionToken, "SetSession rotates the token");
    const afterUpdate = await sessions.getSession({ sessionId: created.sessionId });
    assert.equal(new TextDecoder().decode(afterUpdate.session?.metadata?.device), "node-sdk");

    await sessions.deleteSession({ sessionId: created.sessionId });
    const gone = await failure(sessions.getSession({ sessionId: created.sessionId }));
    assert.equal(gone.code, Code.NotFound);

    const wrong = await failure(sessions.createSession({
      checks: {
        user: { search: { case: "userId", value: added.userId } },
        password: { password: "Wrong-passw0rd!" },
      },
    }));
    assert.equal(wrong.code, Code.InvalidArgument, `wrong password: ${wrong.message}`);
    assert.equal(wrong.code, 3);
    assert.ok(errorIds(wrong).includes(WRONG_PASSWORD_ID), `error details carry ${WRONG_PASSWORD_ID}: ${errorIds(wrong)}`);
    assert.match(wrong.rawMessage, new RegExp(WRONG_PASSWORD_ID));
  });

  test(`general settings over ${name}`, async () => {
    const general = await createSettingsServiceClient(transportFor(TESSERA_PAT)).getGeneralSettings({});
    assert.match(general.defaultOrgId, /^[0-9]+$/);
    assert.equal(general.defaultLanguage, "en");
    assert.deepEqual(general.supportedLanguages, ["en"]);
  });

  test(`a bad token is Unauthenticated over ${name}`, async () => {
    const sessions = createSessionServiceClient(transportFor("not-a-token"));
    const refused = await failure(sessions.listSessions({}));
    assert.equal(refused.code, Code.Unauthenticated);
    assert.ok(errorIds(refused).length > 0, "the error carries an error ID");
  });
}
