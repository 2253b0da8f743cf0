"""Serving without Ray: the wire format, the batch scorer, and the monitor's client policy (down, slow,
refused, back again) against a stand-in HTTP front over the same scorer. The real Ray Serve instance is
tested in test_serve_ray.py."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from helpers_serve import StandInServer, make_v1_checkpoint, make_windows

from model.backends import create_backend
from model.backends.inputs import live_like_inputs
from model.checkpoint import load_checkpoint
from model.featureset import LIVE_V1, LIVE_V2
from realtime.pipeline.inference import InferenceEngine, masked_variants
from realtime.pipeline.remote import (
    RemoteBackend,
    RemoteConfig,
    RemoteEngine,
    ServerClient,
    ServerUnavailable,
)
from realtime.pipeline.wire import (
    FeatureSetMismatch,
    OutputsResponse,
    WindowRequest,
    WireFormatError,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)

TOL = 1e-5  # float32 outputs of the same eager model, batch 1 vs batched rows


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    return load_checkpoint(make_v1_checkpoint(tmp_path_factory.mktemp("serve") / "v1.pt"))


@pytest.fixture(scope="module")
def scorer(loaded):
    from mmcl.serve.scorer import BatchScorer

    return BatchScorer(loaded, create_backend("eager", loaded))


def test_frames_round_trip_and_malformed_bodies_are_refused(loaded) -> None:
    x = live_like_inputs(loaded.model, 2, 50)
    body = encode_request(WindowRequest(LIVE_V1.ident, x, variants=True, client="t"))
    assert len(body) < 2 * 50 * (56 + 34 + 384) * 4 + 2 * 50 * 3 + 400  # float32 + mask bytes + a small header
    back = decode_request(body)
    assert back.feature_set == LIVE_V1.ident and back.variants and back.dims == LIVE_V1.dims
    for a, b in zip(x.as_tuple(), back.inputs.as_tuple(), strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    out = np.arange(12, dtype=np.float32).reshape(4, 3)
    resp = decode_response(encode_response(OutputsResponse(out, {"batch_windows": 3, "replica": "r"})))
    assert np.array_equal(resp.outputs, out) and resp.stats == {"batch_windows": 3, "replica": "r"}
    bad = {
        "magic": b"XXXX" + body[4:],
        "truncated": body[:-1],
        "header": body[:4] + (10**6).to_bytes(4, "little") + body[8:],
        "kind": encode_response(OutputsResponse(out)),
    }
    for name, b in bad.items():
        with pytest.raises(WireFormatError):
            decode_request(b)
        assert name
    mask_off = len(body) - 1
    with pytest.raises(WireFormatError, match="0 or 1"):
        decode_request(body[:mask_off] + b"\x02")


def test_scorer_gives_each_request_the_rows_local_inference_computes(loaded, scorer) -> None:
    eager = create_backend("eager", loaded)
    xs = [live_like_inputs(loaded.model, 1, 50, seed=s) for s in range(3)]
    reqs = [WindowRequest(LIVE_V1.ident, x, variants=(k != 1)) for k, x in enumerate(xs)]
    outs, stats = scorer.score(reqs)
    assert (stats.windows, stats.rows) == (3, 4 + 1 + 4)  # one backend call for all rows
    err = 0.0
    for k, (x, o) in enumerate(zip(xs, outs, strict=True)):
        want = eager.run(x) if k == 1 else np.concatenate([eager.run(x), eager.run(masked_variants(x))])
        assert o.shape == want.shape
        err = max(err, float(np.abs(o - want).max()))
    print(f"batched vs one-by-one eager: max |diff| {err:.2e} (tolerance {TOL:g})")
    assert err <= TOL


def test_scorer_refuses_another_feature_set_with_what_to_do(loaded, scorer) -> None:
    x2 = dataclasses.replace(live_like_inputs(loaded.model, 1, 50))
    x2.vision = np.zeros((1, 50, LIVE_V2.dims["vision"]), np.float32)
    with pytest.raises(FeatureSetMismatch) as exc:
        scorer.check(WindowRequest(LIVE_V2.ident, x2))
    msg = str(exc.value)
    assert LIVE_V1.ident in msg and LIVE_V2.ident in msg and "features.feature_set=live-v1" in msg
    scorer.check(WindowRequest(LIVE_V1.ident, live_like_inputs(loaded.model, 1, 50)))  # the right one passes


def _engine(backend, loaded) -> InferenceEngine:
    cls = RemoteEngine if isinstance(backend, RemoteBackend) else InferenceEngine
    return cls(backend, loaded.task)


def test_client_falls_back_when_the_server_is_down_or_slow_and_rechecks_it(loaded, scorer) -> None:
    server = StandInServer(scorer)
    now = [0.0]
    cfg = RemoteConfig(server.url, timeout_s=0.3, retry_s=2.0)
    local = create_backend("eager", loaded)
    remote = RemoteBackend(cfg, LIVE_V1, loaded.task.to_dict(), local, clock=lambda: now[0])
    eng, ref = _engine(remote, loaded), _engine(create_backend("eager", loaded), loaded)
    windows = make_windows(loaded, 8)
    try:
        p = eng.score(windows[0])
        r = ref.score(windows[0])
        assert p.scored_by == "server" and server.requests == 1  # prediction + attribution: one request
        assert p.score == pytest.approx(r.score, abs=TOL)
        assert all(p.contributions[m] == pytest.approx(r.contributions[m], abs=TOL) for m in p.contributions
                   if r.contributions[m] is not None)  # fmt: skip
        assert "ok" in remote.describe()
        server.delay_s = 0.6  # slower than the 0.3 s timeout
        p = eng.score(windows[1])
        assert p.scored_by == "local" and "slow" in remote.describe() and "DOWN" in remote.describe()
        server.delay_s = 0.0
        before = server.requests
        p = eng.score(windows[2])  # within retry_s: not asked again
        assert p.scored_by == "local" and server.requests == before
        now[0] += 2.5
        p = eng.score(windows[3])  # asked again: /v1/info first, then the window
        assert p.scored_by == "server" and remote.verified
        server.close()
        now[0] += 0.1
        p = eng.score(windows[4])
        assert p.scored_by == "local" and "unreachable" in remote.stats.last_error
        assert p.score == pytest.approx(ref.score(windows[4]).score, abs=TOL)
        st = remote.stats.to_dict()
        assert (st["served"], st["local"], st["unscored"]) == (2, 3, 0)
        assert p.to_dict()["scored_by"] == "local"  # the event log says who scored each window
    finally:
        server.close()


def test_server_on_another_model_is_not_used_and_no_local_model_is_an_error(tmp_path, loaded, scorer) -> None:
    from mmcl.serve.scorer import BatchScorer

    other = load_checkpoint(make_v1_checkpoint(tmp_path / "other.pt", seed=1))
    clf = dataclasses.replace(other, task=dataclasses.replace(other.task, task="classification", num_classes=3))
    server = StandInServer(BatchScorer(clf, create_backend("eager", other)))
    try:
        cfg = RemoteConfig(server.url, timeout_s=0.5, retry_s=60.0)
        remote = RemoteBackend(cfg, LIVE_V1, loaded.task.to_dict(), None)
        eng = _engine(remote, loaded)
        with pytest.raises(ServerUnavailable, match="no local model"):
            eng.predict(make_windows(loaded, 1)[0])
        assert "predicts" in remote.stats.last_error and server.requests == 0  # refused at /v1/info
        with pytest.raises(ServerUnavailable, match="no local model"):
            eng.predict(make_windows(loaded, 1)[0])  # and not asked again within retry_s
        assert remote.stats.unscored == 2
    finally:
        server.close()
    client = ServerClient(server.url, timeout_s=0.3)
    with pytest.raises(ServerUnavailable, match="unreachable"):
        client.info()
    with pytest.raises(Exception, match="http://HOST:PORT"):
        RemoteConfig("ftp://x")


def test_serve_and_monitor_server_errors_say_what_to_do(tmp_path) -> None:
    from typer.testing import CliRunner

    from mmcl.cli import app
    from model.errors import CheckpointError, ConfigError

    runner = CliRunner()
    res = runner.invoke(app, ["serve", "--checkpoint", str(tmp_path / "missing.pt")])  # refused before Ray starts
    assert isinstance(res.exception, CheckpointError) and "does not exist" in str(res.exception)
    res = runner.invoke(app, ["serve", "--backend", "foo"])
    assert isinstance(res.exception, ConfigError) and "unknown backend" in str(res.exception)
    res = runner.invoke(app, ["serve", "--max-batch", "0"])
    assert isinstance(res.exception, ConfigError) and "--max-batch" in str(res.exception)
    res = runner.invoke(app, ["monitor", "--camera", "none", "--mic", "none", "--server", "http://127.0.0.1:1",
                              "--no-fallback"])  # fmt: skip
    assert isinstance(res.exception, ServerUnavailable) and "start `mmcl serve` first" in str(res.exception)
    res = runner.invoke(app, ["monitor", "--server", "localhost:8000"])
    assert isinstance(res.exception, ConfigError) and "http://HOST:PORT" in str(res.exception)
