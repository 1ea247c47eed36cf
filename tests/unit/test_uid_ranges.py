"""Short sequence sets for long claims: every UID once, each command line bounded."""

from __future__ import annotations

import random

from airflow_provider_mail.mail.uid_ranges import MAX_SET_TEXT, UidRanges, sequence_sets


def test_texts_cover_the_set_once_each_within_the_limit() -> None:
    generator = random.Random(7162)
    for _ in range(2000):
        top = generator.choice([10, 1000, 10**9])
        uids = {generator.randint(1, top) for _ in range(generator.randint(0, 60))}
        limit = generator.randint(24, 200)
        texts = list(UidRanges.of(uids).to_texts(limit=limit))
        assert all(0 < len(text) <= limit for text in texts)
        parts = [list(UidRanges.parse(text)) for text in texts]
        assert [uid for part in parts for uid in part] == sorted(uids)  # once each, ascending


def test_a_scattered_backlog_becomes_a_few_commands() -> None:
    every_other = range(1, 40_000, 2)  # 20,000 UIDs, no two adjacent: 114 KB listed whole
    texts = list(sequence_sets(every_other))
    assert len(texts) == 15
    assert max(map(len, texts)) <= MAX_SET_TEXT
    assert list(sequence_sets(range(1, 16_001))) == ["1:16000"]
    assert list(sequence_sets([])) == []
