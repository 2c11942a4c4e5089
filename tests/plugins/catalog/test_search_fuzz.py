"""Whatever text a caller types into ``q`` of search or suggest, the answer is a 200 or a 422:
a query the text-search parser would reject (after folding) is never a 500."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.plugins.catalog.search_data import insert_builder, insert_project

SEARCH = "/api/v1/projects/search"
SUGGEST = "/api/v1/projects/suggest"

# Any code point but surrogates (they cannot be encoded into a URL), control characters and
# NUL included, with a bias towards letters that fold into tsquery syntax (ŉ to 'n, ⑴ to (1)).
TRICKY = "ŉ⑴℀℅½ǄĲ \x00"
ANY_TEXT = st.text(st.one_of(st.characters(exclude_categories=("Cs",)),
                             st.sampled_from(TRICKY)), max_size=80)

fuzz = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@pytest.fixture
async def projects(services):
    async with services.db.transaction() as tx:
        builder = await insert_builder(tx, "Prestige Group", verified=True)
        await insert_project(tx, builder, name="Prestige Lakeside Habitat",
                             locality="Whitefield", city="Bengaluru")


async def _status(client, path, q):
    response = await client.get(path, params={"q": q})
    assert response.status in (200, 422), (q, response.status, await response.text())
    return response.status


@pytest.mark.parametrize("q", [
    "ŉ",                # folds to 'n: a quote the tsquery parser rejects
    "Prestige ŉ",       # the same as the last word being typed after others
    "⑴",                # folds to (1)
    "℀",                # folds to a/c
    "pre\\",
    "it's",
    "a:*",
    "x & y | !z",
])
async def test_query_syntax_is_never_a_500(client, projects, q):
    assert await _status(client, SEARCH, q) == 200
    if len(q.strip()) >= 2:
        assert await _status(client, SUGGEST, q) == 200


async def test_nul_is_a_422_naming_q(client):
    # (propmubi.validation refuses NUL in any string field.)
    for path in (SEARCH, SUGGEST):
        response = await client.get(path, params={"q": "ab\x00cd"})
        assert response.status == 422, await response.text()
        assert [e["field"] for e in (await response.json())["errors"]] == ["q"]


async def test_folded_prefix_still_matches(client, projects):
    response = await client.get(SEARCH, params={"q": "Prestige ŉ"})
    assert response.status == 200
    response = await client.get(SEARCH, params={"q": "presti"})
    names = [i["name"] for i in (await response.json())["items"]]
    assert names == ["Prestige Lakeside Habitat"]


@fuzz
@given(q=ANY_TEXT)
async def test_search_q_fuzz_is_200_or_422(client, q):
    await _status(client, SEARCH, q)


@fuzz
@given(q=ANY_TEXT)
async def test_suggest_q_fuzz_is_200_or_422(client, q):
    await _status(client, SUGGEST, q)
