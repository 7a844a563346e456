"""EM recovers known m and prior; u from random pairs; term frequencies; the model file."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from hub.identity.synthetic import people
from identity_index.comparisons import BY_NAME
from identity_index.features import features_from_canonical
from identity_index.model import FORMAT, Model, ModelFileError, default_model
from identity_index.training import (
    estimate_u,
    expectation_maximisation,
    random_pairs,
    term_frequencies,
    train,
)
from tests.unit.identity.identity_factory import feat

COMPS = (BY_NAME["dob"], BY_NAME["sex"], BY_NAME["address"], BY_NAME["nhs"])
TRUE_M = [(0.85, 0.05, 0.05, 0.03, 0.02), (0.95, 0.05), (0.7, 0.1, 0.1, 0.1), (0.97, 0.03)]
TRUE_U = [(0.01, 0.005, 0.05, 0.035, 0.9), (0.5, 0.5), (0.02, 0.01, 0.2, 0.77), (0.001, 0.999)]


def _sample(n: int, prior: float, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    is_match = rng.random(n) < prior
    gamma = np.zeros((n, len(COMPS)), dtype=np.int8)
    for k in range(len(COMPS)):
        m_draw = rng.choice(len(TRUE_M[k]), size=n, p=TRUE_M[k])
        u_draw = rng.choice(len(TRUE_U[k]), size=n, p=TRUE_U[k])
        gamma[:, k] = np.where(is_match, m_draw, u_draw)
    gamma[rng.random((n, len(COMPS))) < 0.05] = -1  # some values missing
    return gamma


def test_em_recovers_known_m_and_prior():
    gamma = _sample(40_000, prior=0.2)
    start = [tuple(np.full(len(m), 1 / len(m))) for m in TRUE_M]
    result = expectation_maximisation(gamma, start, TRUE_U, 0.5, COMPS)
    assert result.converged
    assert result.prior == pytest.approx(0.2, abs=0.02)
    for got, want in zip(result.m, TRUE_M):
        assert np.allclose(got, want, atol=0.03), (got, want)


def test_labels_fix_match_probabilities():
    gamma = _sample(2_000, prior=0.3)
    labels = np.full(len(gamma), np.nan)
    labels[:10] = 1.0
    labels[10:20] = 0.0
    result = expectation_maximisation(gamma, TRUE_M, TRUE_U, 0.3, COMPS, labels=labels)
    assert (result.match_probability[:10] == 1.0).all()
    assert (result.match_probability[10:20] == 0.0).all()


def test_u_from_random_pairs_reflects_chance_agreement():
    records = [feat("Amy", "Smith", f"20{10 + i % 8}-0{1 + i % 9}-1{i % 9}", sex="female" if i % 2 else "male")
               for i in range(200)]
    u = estimate_u(records, max_pairs=5_000)
    sex_u = u[3]
    assert sex_u[0] == pytest.approx(0.5, abs=0.05)
    assert len(random_pairs(200, 5_000, __import__("random").Random(1))) == 5_000


def test_term_frequencies_make_rare_names_count_more():
    records = [feat("Amy", "Smith") for _ in range(50)] + [feat("Amy", "Featherstonehaugh") for _ in range(2)]
    tf, default = term_frequencies(records)
    model = Model(params=default_model().params, prior=1e-4, tf=tf, tf_default=default)
    common = model.tf_adjustment("family", "smith")
    rare = model.tf_adjustment("family", "featherstonehaugh")
    unseen = model.tf_adjustment("family", "zielinski")
    assert rare > common
    assert unseen >= rare
    assert -5.0 <= common and unseen <= 5.0


def test_training_on_synthetic_people_learns_sensible_weights():
    records = list(people(800, seed=11))
    feats = [features_from_canonical(r.ref, r.person) for r in records]
    model = train(feats, default_model(), now=dt.datetime(2026, 11, 25, tzinfo=dt.UTC))
    p = model.params
    assert p["dob"].weight(0) > 5 and p["dob"].weight(4) < -3
    assert p["given"].weight(0) > 3 and p["given"].weight(6) < -2
    assert p["nhs"].weight(1) < -5  # a disagreeing NHS number is strong evidence against
    assert 0 < model.prior < 0.01
    assert all(s["converged"] for s in model.training["sessions"])
    assert model.version.startswith("20261125T000000Z-")
    assert model.data_fingerprint and model.trained_at.startswith("2026-11-25")


def test_model_file_round_trip_and_errors(tmp_path):
    model = default_model().with_thresholds(0.97, 0.4)
    path = model.save(tmp_path / "m" / "model.json")
    loaded = Model.load(path)
    assert loaded.params == model.params and loaded.thresholds == model.thresholds
    data = json.loads(path.read_text())
    assert data["format"] == FORMAT
    data["comparisons"]["dob"]["levels"] = ["exact", "else"]
    path.write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match="retrain"):
        Model.load(path)
    path.write_text("{not json")
    with pytest.raises(ModelFileError, match=str(path.name)):
        Model.load(path)
