"""`ApprovalStore` on a DynamoDB table (pk = action id, TTL on `ttl`; a `by-owner`
index on `owner` = team#user, for forgetting a user; a sparse `pending-by-expiry` index
holding only the records still waiting for a press, for the expiry sweep).

Each state change is one UpdateItem whose ConditionExpression is the state machine's
rule, so the table itself refuses an illegal or lost move."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mailroom.adapters.aws import LazyClient
from mailroom.approval_record import SEND_WINDOW_SECONDS, ApprovalRecord, State, StateConflict, can_move
from mailroom.errors import TransientError

OWNER_INDEX = "by-owner"
# Sparse: a record is in it while it holds `pending` (set at create, removed by every
# move in the same conditional write), sorted by `expires_at`.
PENDING_INDEX = "pending-by-expiry"
PENDING_MARK = "pending"


def owner_key(team_id: str, user_id: str) -> str:
    return f"{team_id}#{user_id}"


# Ended records stay this long (a late press is told what happened), then TTL removes them.
KEEP_AFTER_END_SECONDS = 7 * 24 * 3600

_STRINGS = (
    "kind",
    "team_id",
    "user_id",
    "conversation_id",
    "channel_id",
    "gmail_address",
    "message_hash",
    "draft_id",
    "card_ts",
    "decided_by",
    "gmail_id",
    "reason",
    "replaced_by",
)


class DynamoApprovalStore:
    def __init__(self, table_name: str, client: Any | None = None):
        self._table = table_name
        self._dynamodb = LazyClient("dynamodb", client)

    def create(self, record: ApprovalRecord) -> ApprovalRecord:
        item: dict[str, Any] = {
            "pk": {"S": record.action_id},
            "state": {"S": State.PENDING.value},
            "created_at": {"N": repr(record.created_at)},
            "updated_at": {"N": repr(record.created_at)},
            "expires_at": {"N": repr(record.expires_at)},
            "attempts": {"N": "0"},
            "ttl": {"N": str(int(record.expires_at) + KEEP_AFTER_END_SECONDS)},
            "owner": {"S": owner_key(record.team_id, record.user_id)},
            "pending": {"S": PENDING_MARK},
        }
        for name in _STRINGS:
            value = getattr(record, name)
            if value is not None:
                item[name] = {"S": str(value)}
        try:
            self._call("put_item", TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)")
        except StateConflict:
            existing = self.get(record.action_id)
            assert existing is not None, "a record that blocked the put is there"
            return existing
        return self._record(item)

    def get(self, action_id: str) -> ApprovalRecord | None:
        found = self._call("get_item", TableName=self._table, Key={"pk": {"S": action_id}}, ConsistentRead=True)
        item = found.get("Item")
        return self._record(item) if item else None

    def move(
        self,
        action_id: str,
        to: State,
        *,
        now: float,
        from_states: frozenset[State],
        unexpired: bool = False,
        past_expiry: bool = False,
        decided_by: str | None = None,
        gmail_id: str | None = None,
        reason: str | None = None,
        replaced_by: str | None = None,
    ) -> ApprovalRecord:
        assert from_states and all(can_move(s, to) for s in from_states), f"no move {from_states} -> {to}"
        names = {"#state": "state", "#pending": "pending"}
        values: dict[str, Any] = {":to": {"S": to.value}, ":now": {"N": repr(now)}}
        sets = ["#state = :to", "updated_at = :now"]
        if to == State.APPROVED:
            sets.append("send_by = :send_by")
            values[":send_by"] = {"N": repr(now + SEND_WINDOW_SECONDS)}
        for name, value in (
            ("decided_by", decided_by),
            ("gmail_id", gmail_id),
            ("reason", reason),
            ("replaced_by", replaced_by),
        ):
            if value is not None:
                sets.append(f"{name} = :{name}")
                values[f":{name}"] = {"S": value}
        froms = []
        for index, state in enumerate(sorted(from_states)):
            values[f":from{index}"] = {"S": state.value}
            froms.append(f":from{index}")
        condition = f"#state IN ({', '.join(froms)})"
        if unexpired:
            condition += " AND expires_at > :now"
        if past_expiry:
            condition += " AND expires_at <= :now"
        # Every move leaves pending (or was never in it): out of the sweep's index.
        return self._update(action_id, "SET " + ", ".join(sets) + " REMOVE #pending", condition, names, values)

    def pending_expired(self, now: float, limit: int) -> list[str]:
        """Ids of records still pending whose expiry has passed, oldest first, at most
        `limit` (the sparse index; eventually consistent, so the move re-checks)."""
        ids: list[str] = []
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": PENDING_INDEX,
            "KeyConditionExpression": "#pending = :pending AND expires_at <= :now",
            "ExpressionAttributeNames": {"#pending": "pending"},
            "ExpressionAttributeValues": {":pending": {"S": PENDING_MARK}, ":now": {"N": repr(now)}},
            "Limit": limit,
        }
        while len(ids) < limit:
            page = self._call("query", **query)
            ids += [item["pk"]["S"] for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return ids[:limit]

    def of_owner(self, team_id: str, user_id: str) -> list[ApprovalRecord]:
        """Every record of this user, whatever its state (the `by-owner` index)."""
        records: list[ApprovalRecord] = []
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": OWNER_INDEX,
            "KeyConditionExpression": "#owner = :owner",
            "ExpressionAttributeNames": {"#owner": "owner"},
            "ExpressionAttributeValues": {":owner": {"S": owner_key(team_id, user_id)}},
        }
        while True:
            page = self._call("query", **query)
            records += [self._record(item) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return records
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def erase(self, action_id: str) -> None:
        """Delete the record (a user who revokes is forgotten, records included)."""
        self._call("delete_item", TableName=self._table, Key={"pk": {"S": action_id}})

    def begin_attempt(self, action_id: str, *, now: float, message_hash: str, max_attempts: int) -> ApprovalRecord:
        return self._update(
            action_id,
            "SET #state = :sending, updated_at = :now ADD attempts :one",
            "#state IN (:approved, :sending) AND expires_at > :now AND message_hash = :hash AND attempts < :max"
            " AND (attribute_not_exists(send_by) OR send_by > :now)",
            {"#state": "state"},
            {
                ":sending": {"S": State.SENDING.value},
                ":approved": {"S": State.APPROVED.value},
                ":now": {"N": repr(now)},
                ":one": {"N": "1"},
                ":hash": {"S": message_hash},
                ":max": {"N": str(max_attempts)},
            },
        )

    def stop_attempts(self, action_id: str, *, max_attempts: int, reason: str) -> ApprovalRecord:
        return self._update(
            action_id,
            "SET attempts = :max, reason = :reason",
            "#state = :sending",
            {"#state": "state"},
            {":max": {"N": str(max_attempts)}, ":reason": {"S": reason}, ":sending": {"S": State.SENDING.value}},
        )

    def set_card(self, action_id: str, card_ts: str) -> None:
        self._update(
            action_id,
            "SET card_ts = :ts",
            "#state = :pending",
            {"#state": "state"},
            {":ts": {"S": card_ts}, ":pending": {"S": State.PENDING.value}},
        )

    def _update(
        self, action_id: str, update: str, condition: str, names: dict[str, str], values: dict[str, Any]
    ) -> ApprovalRecord:
        answer = self._call(
            "update_item",
            TableName=self._table,
            Key={"pk": {"S": action_id}},
            UpdateExpression=update,
            ConditionExpression=f"attribute_exists(pk) AND {condition}",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        return self._record(answer["Attributes"])

    def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._dynamodb(), method)(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "ConditionalCheckFailedException":
                old: Any = exc.response.get("Item")
                raise StateConflict(self._record(old) if old else None) from exc
            raise TransientError(f"DynamoDB {method} failed: {code}") from exc
        except BotoCoreError as exc:
            raise TransientError(f"DynamoDB {method} unreachable: {type(exc).__name__}") from exc

    @staticmethod
    def _record(item: dict[str, Any]) -> ApprovalRecord:
        def text(name: str) -> str | None:
            value = item.get(name)
            return value["S"] if value else None

        return ApprovalRecord(
            action_id=item["pk"]["S"],
            kind=text("kind") or "",
            team_id=text("team_id") or "",
            user_id=text("user_id") or "",
            conversation_id=text("conversation_id") or "",
            channel_id=text("channel_id") or "",
            gmail_address=text("gmail_address") or "",
            message_hash=text("message_hash") or "",
            state=State(item["state"]["S"]),
            created_at=float(item["created_at"]["N"]),
            expires_at=float(item["expires_at"]["N"]),
            draft_id=text("draft_id"),
            card_ts=text("card_ts"),
            decided_by=text("decided_by"),
            attempts=int(item.get("attempts", {}).get("N", "0")),
            gmail_id=text("gmail_id"),
            reason=text("reason"),
            replaced_by=text("replaced_by"),
            updated_at=float(item.get("updated_at", {}).get("N", "0")),
            send_by=float(item["send_by"]["N"]) if "send_by" in item else None,
        )
