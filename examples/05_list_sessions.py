"""List sessions, then search the sessions of one user."""

from __future__ import annotations

import sys

from _common import client
from zitadel_client.models import (
    SessionServiceListQuery,
    SessionServiceListSessionsRequest,
    SessionServiceSearchQuery,
    SessionServiceSessionFieldName,
    SessionServiceUserIDQuery,
)


def main(user_id: str) -> None:
    api = client()
    everything = api.sessions.list_sessions(SessionServiceListSessionsRequest(
        query=SessionServiceListQuery(limit=20),
        sorting_column=SessionServiceSessionFieldName.SESSION_FIELD_NAME_CREATION_DATE))
    print(f"{int(everything.details.total_result or 0)} sessions in total; newest first:")
    for session in everything.sessions or []:
        print(f"  {session.id} created {session.creation_date.isoformat()}")
    mine = api.sessions.list_sessions(SessionServiceListSessionsRequest(
        queries=[SessionServiceSearchQuery(user_id_query=SessionServiceUserIDQuery(id=user_id))]))
    print(f"{int(mine.details.total_result or 0)} sessions of user {user_id}")


if __name__ == "__main__":
    main(sys.argv[1])
