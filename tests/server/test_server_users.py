"""CONTRACT.md "Users", "Listing users" and /unregister: one test per rule, on every store
backend."""

import pytest

STORE_BACKENDS = ("sqlite", "postgresql")
#: every test also runs with an API token and a store key set (see conftest.py)
SECURITY = ("open", "secured")


def test_check_user_unknown_name_shape(api):
    result = api.check("nobody")
    assert result["status"] == "00000" and result["message"] == "success"
    assert result["data"] == {"user_name": "nobody", "enroll_num": 0, "update_time": "",
                              "group_id": None}


def test_check_user_known_name_shape(api, voices):
    api.enroll("alice", 1, voices.wav(0, 0), group_id=3)
    api.enroll("alice", 2, voices.wav(0, 1), group_id=3)
    data = api.check("alice")["data"]
    assert list(data) == ["user_name", "enroll_num", "update_time", "group_id"]
    assert data["user_name"] == "alice" and data["enroll_num"] == 2 and data["group_id"] == 3


# ------------------------------------------------------------- unregister ---

def test_unregister_unknown_name_is_22135(api):
    result = api.post("/unregister", {"user_name": "nobody"})
    assert result["status"] == "22135"
    assert result["message"] == "unregistration failed: this user_name hasn't been registered"
    assert result["data"] == {"user_name": "nobody"}


@pytest.mark.parametrize("count", [1, 2, 3])
def test_unregister_removes_partly_and_fully_enrolled_users(api, voices, count):
    for k in range(1, count + 1):
        api.enroll("alice", k, voices.wav(0, k - 1))
    result = api.post("/unregister", {"user_name": "alice"})
    assert result["status"] == "00000" and result["message"] == "success"
    assert result["data"] == {"user_name": "alice"}
    assert api.check("alice")["data"]["enroll_num"] == 0
    assert api.get("/getUsers")["data"] == []
    assert api.store.get_enrollment("alice") == (None, [])
    assert api.post("/unregister", {"user_name": "alice"})["status"] == "22135"


def test_after_unregister_the_name_is_free_again(api, voices):
    api.enroll_fully("alice", voices, 0, group_id=2)
    api.post("/unregister", {"user_name": "alice"})
    # a new, different voice under the same name: no mismatch with the old takes
    assert api.enroll("alice", 2, voices.wav(1, 0))["status"] == "22132"
    api.enroll_fully("alice", voices, 1)
    assert api.check("alice")["data"]["group_id"] == 0
    confidence = api.verify(voices.wav(1, 3), user_name="alice")["data"]["confidence"]
    assert confidence > 0.7
    assert api.verify(voices.wav(0, 3), user_name="alice")["data"]["confidence"] < 0.7


def test_unregister_leaves_other_users_alone(api, voices):
    api.enroll_fully("alice", voices, 0)
    api.enroll("bob_", 1, voices.wav(1, 0))
    api.post("/unregister", {"user_name": "alice"})
    assert api.check("bob_")["data"]["enroll_num"] == 1
    assert api.store.get_enrollment("bob_")[0].enroll_num == 1


# ---------------------------------------------------------------- getUsers ---

def test_get_users_empty_is_an_empty_list(api):
    result = api.get("/getUsers")
    assert result["status"] == "00000" and result["message"] == "success"
    assert result["data"] == []


@pytest.fixture
def listed(api, voices):
    """Users with names chosen to expose code-point order (uppercase < digits? no:
    '-' < '0' < 'A' < '_' < 'a')."""
    plan = [("bob_", 0, 2, 1), ("Zed-", 1, 1, 0), ("alice", 0, 3, 0), ("_und", 2, 1, 5),
            ("0abc", 3, 2, 5), ("-dash", 1, 1, 0), ("aaaa", 2, 1, 1)]
    for name, voice, takes, group in plan:
        for k in range(1, takes + 1):
            result = api.enroll(name, k, voices.wav(voice, k - 1), group_id=group)
            assert result["status"] == "00000"
    return api, {name: (takes, group) for name, _, takes, group in plan}


def test_get_users_lists_partly_and_fully_enrolled_sorted_by_code_point(listed):
    api, plan = listed
    data = api.get("/getUsers")["data"]
    assert [u["user_name"] for u in data] == sorted(plan)  # Python sorts str by code point
    assert [u["user_name"] for u in data] == ["-dash", "0abc", "Zed-", "_und", "aaaa", "alice",
                                              "bob_"]
    for user in data:
        assert list(user) == ["user_name", "enroll_num", "update_time", "group_id"]
        assert (user["enroll_num"], user["group_id"]) == plan[user["user_name"]]


def test_get_users_group_filter(listed):
    api, plan = listed
    data = api.get("/getUsers?group_id=5")["data"]
    assert [u["user_name"] for u in data] == ["0abc", "_und"]
    assert api.get("/getUsers?group_id=42")["data"] == []


def test_get_users_pagination(listed):
    api, plan = listed
    everyone = [u["user_name"] for u in api.get("/getUsers")["data"]]
    pages = []
    for offset in range(0, len(everyone), 3):
        page = api.get(f"/getUsers?offset={offset}&limit=3")["data"]
        assert len(page) <= 3
        pages += [u["user_name"] for u in page]
    assert pages == everyone
    assert api.get("/getUsers?offset=100")["data"] == []
    assert [u["user_name"] for u in api.get("/getUsers?limit=2")["data"]] == everyone[:2]
    assert [u["user_name"] for u in api.get("/getUsers?group_id=0&offset=1&limit=1")["data"]] \
        == ["Zed-"]


@pytest.mark.parametrize("query,field", [
    ("group_id=-1", "group_id"), ("group_id=100", "group_id"), ("group_id=x", "group_id"),
    ("group_id=", "group_id"), ("group_id=1.0", "group_id"), ("offset=-1", "offset"),
    ("offset=abc", "offset"), ("limit=0", "limit"), ("limit=10001", "limit"),
    ("limit=1e3", "limit"), ("limit=5&limit=6", "limit"), ("group_id=%201", "group_id"),
])
def test_get_users_bad_query_value_is_22121_naming_it(api, query, field):
    result = api.get("/getUsers?" + query)
    assert result["status"] == "22121"
    assert field in result["message"]
    assert result["data"] is None


def test_get_users_without_parameters_is_exactly_the_specifications(listed):
    api, _ = listed
    plain = api.get("/getUsers")
    assert set(plain) == {"task_id", "status", "message", "data"}
    assert len(plain["data"]) == 7
    assert plain["data"] == api.get("/getUsers?unknown=1")["data"]


def test_get_users_limit_10000_is_accepted(api):
    assert api.get("/getUsers?limit=10000")["status"] == "00000"
