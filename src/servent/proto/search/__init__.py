"""Search by name (sans-IO): words and keyword keys, signed entries, the ``servent/search/1``
messages, the keyword index store, merged results and answerer scores, supernode roles."""

from servent.proto.search.entry import (
    FILE,
    PERSON,
    SearchEntry,
    SearchProtocolError,
    check_fresh,
    entry_from_value,
    verify_entry,
)
from servent.proto.search.frames import (
    INDEX,
    LOCAL,
    ROUTE,
    Query,
    ResultBatch,
    SearchMessage,
    Store,
    StoreAnswer,
    SupernodeAsk,
    SupernodeList,
    decode_message,
    encode_message,
)
from servent.proto.search.index_store import KeywordIndexStore
from servent.proto.search.results import AnswererScores, QueryResults, SearchResult
from servent.proto.search.supernodes import (
    LEAF,
    SUPERNODE,
    SupernodeView,
    decide_role,
)
from servent.proto.search.words import (
    keyword_key,
    keywords,
    match_quality,
    matches,
    node_position,
    normalise,
    rarest_keyword,
    words,
)

__all__ = [
    "FILE",
    "INDEX",
    "LEAF",
    "LOCAL",
    "PERSON",
    "ROUTE",
    "SUPERNODE",
    "AnswererScores",
    "KeywordIndexStore",
    "Query",
    "QueryResults",
    "ResultBatch",
    "SearchEntry",
    "SearchMessage",
    "SearchProtocolError",
    "SearchResult",
    "Store",
    "StoreAnswer",
    "SupernodeAsk",
    "SupernodeList",
    "SupernodeView",
    "check_fresh",
    "decide_role",
    "decode_message",
    "encode_message",
    "entry_from_value",
    "keyword_key",
    "keywords",
    "match_quality",
    "matches",
    "node_position",
    "normalise",
    "rarest_keyword",
    "verify_entry",
    "words",
]
