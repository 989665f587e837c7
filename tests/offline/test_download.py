"""Dataset downloads against a real HTTP server on 127.0.0.1 (tests/offline/download_server.py), serving D4RL-layout
files under D4RL's relative paths: resume after drops and kills, servers without Range, HTTP errors, truncated and
wrong bodies, two processes at once, offline mode, the CLI, and Minari's download hook."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time

import numpy as np
import pytest
from download_server import DownloadServer
from offline_helpers import episodic_arrays, write_file

from rlcore.cli import main
from rlcore.envs.offline.download import d4rl_url, dataset_table, fetch_d4rl, fetch_dataset
from rlcore.envs.offline.readers import load_dataset
from rlcore.envs.offline.registry import MINARI_PORTS, d4rl_reference_scores, d4rl_relative_paths
from rlcore.errors import DataError, UserError

NAME, RELATIVE, FILE = "hopper-medium-v2", "gym_mujoco_v2/hopper_medium-v2.hdf5", "hopper_medium-v2.hdf5"
FAST = {"attempts": 3, "backoff_s": 0.01, "timeout_s": 10.0}


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A Hopper-sized D4RL-layout file (about 430 KB) under D4RL's path in a served folder, an empty cache, and
    the environment pointing at both (downloads allowed)."""
    root, cache = tmp_path / "server", tmp_path / "cache"
    (root / "gym_mujoco_v2").mkdir(parents=True)
    write_file(root / RELATIVE, episodic_arrays([1000] * 4, ["timeout", "terminal", "timeout", "none"], 11, 3))
    monkeypatch.setenv("D4RL_DATASET_DIR", str(cache))
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    for var in ("RLCORE_OFFLINE", "HF_HUB_OFFLINE"):  # conftest switches the hub off for every test
        monkeypatch.setenv(var, "0")
    return root, cache


def serve(monkeypatch, root, mode="normal", delay=0.0) -> DownloadServer:
    server = DownloadServer(root, mode, delay).start()
    monkeypatch.setenv("RLCORE_D4RL_URL", server.url)
    return server


@pytest.fixture
def stop_servers():
    servers = []
    yield servers
    for s in servers:
        s.stop()


def only_file_requests(server):
    return [r for r in server.requests if r["path"] == "/" + RELATIVE]


def assert_nothing_final(cache, part_allowed=False):
    assert not (cache / FILE).exists()
    if not part_allowed:
        assert not (cache / (FILE + ".part")).exists()


# ------------------------------------------------------------------------------------------------------------------
# names -> URLs and files


def test_every_d4rl_name_has_d4rls_relative_path(monkeypatch):
    paths = d4rl_relative_paths()
    assert set(paths) == set(d4rl_reference_scores())
    # checked by hand against D4RL's infos.py
    assert paths["hopper-medium-v2"] == RELATIVE
    assert paths["door-human-v1"] == "hand_dapg_v1/door-human-v1.hdf5"
    assert paths["hopper-medium-replay-v0"] == "gym_mujoco/hopper_mixed.hdf5"
    assert paths["antmaze-large-play-v2"] == \
        "ant_maze_v2/Ant_maze_hardest-maze_noisy_multistart_True_multigoal_False_sparse_fixed.hdf5"
    assert paths["kitchen-mixed-v0"] == "kitchen/kitchen_microwave_kettle_bottomburner_light-v0.hdf5"
    for name, path in paths.items():  # the loop rules at the end of infos.py
        env, version = name.split("-")[0], name.rsplit("-", 1)[1]
        if env in ("hopper", "halfcheetah", "walker2d", "ant") and version in ("v1", "v2"):
            assert path == f"gym_mujoco_{version}/{name.replace('-', '_')[:-3]}-{version}.hdf5"
        if env in ("pen", "hammer", "door", "relocate") and version == "v1":
            assert path == f"hand_dapg_v1/{name}.hdf5"
    assert len({p.rsplit("/", 1)[1] for p in paths.values()}) == len(paths)  # file names never collide in the cache
    monkeypatch.delenv("RLCORE_D4RL_URL", raising=False)
    assert d4rl_url("door-human-v1") == "http://rail.eecs.berkeley.edu/datasets/offline_rl/hand_dapg_v1/door-human-v1.hdf5"
    for base in ("http://mirror.example/d4rl", "http://mirror.example/d4rl/"):
        monkeypatch.setenv("RLCORE_D4RL_URL", base)
        assert d4rl_url(NAME) == f"http://mirror.example/d4rl/{RELATIVE}"
    with pytest.raises(UserError, match="pendulum-expert-v0' is not a D4RL dataset"):
        d4rl_url("pendulum-expert-v0")


def test_a_file_d4rl_cached_is_used_without_network(served, monkeypatch, stop_servers):
    root, cache = served
    cache.mkdir()
    (cache / FILE).write_bytes((root / RELATIVE).read_bytes())
    stop_servers.append(server := serve(monkeypatch, root))
    assert fetch_d4rl(NAME) == cache / FILE
    assert len(load_dataset(NAME)) == 4000 - 2 and server.requests == []


# ------------------------------------------------------------------------------------------------------------------
# transfers


def test_plain_download_is_byte_identical_and_loads(served, monkeypatch, stop_servers):
    root, cache = served
    stop_servers.append(server := serve(monkeypatch, root))
    ds = load_dataset(NAME)  # the --task path: download on first use
    assert (cache / FILE).read_bytes() == (root / RELATIVE).read_bytes()
    assert ds.metadata["task"] == NAME and (ds.obs_dim, ds.act_dim) == (11, 3)
    assert [r["range"] for r in server.requests] == [None]
    assert [p.name for p in cache.iterdir()] == [FILE]  # no part or lock file left


@pytest.mark.parametrize("mode", ["drop-once", "no-range"])
def test_dropped_connection_resumes_or_restarts(served, monkeypatch, stop_servers, mode):
    root, cache = served
    stop_servers.append(server := serve(monkeypatch, root, mode))
    fetch_d4rl(NAME, progress=False, **FAST)
    size = (root / RELATIVE).stat().st_size
    assert (cache / FILE).read_bytes() == (root / RELATIVE).read_bytes()
    requests = only_file_requests(server)
    assert [r["range"] for r in requests] == [None, f"bytes={size // 2}-"]
    assert [r["status"] for r in requests] == [200, 206 if mode == "drop-once" else 200]  # no-range: from zero


def _download_in_child(progress: bool) -> None:
    fetch_d4rl(NAME, progress=progress, **FAST)


@pytest.mark.skipif(sys.platform == "win32", reason="fork and SIGKILL are POSIX")
def test_kill_9_mid_transfer_then_resume(served, monkeypatch, stop_servers):
    root, cache = served
    stop_servers.append(server := serve(monkeypatch, root, delay=0.05))  # about 3 s for the whole file
    child = multiprocessing.get_context("fork").Process(target=_download_in_child, args=(False,))
    child.start()
    part = cache / (FILE + ".part")
    deadline = time.monotonic() + 20
    while not (part.exists() and part.stat().st_size > 0) and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    assert child.exitcode == -signal.SIGKILL
    have = part.stat().st_size
    assert 0 < have < (root / RELATIVE).stat().st_size
    assert_nothing_final(cache, part_allowed=True)
    server.delay = 0.0
    fetch_d4rl(NAME, progress=False, **FAST)
    assert (cache / FILE).read_bytes() == (root / RELATIVE).read_bytes()
    assert only_file_requests(server)[-1]["range"] == f"bytes={have}-" and not part.exists()


@pytest.mark.skipif(sys.platform == "win32", reason="fork and fcntl locks are POSIX")
def test_two_processes_download_one_file_once(served, monkeypatch, stop_servers, capfd):
    root, cache = served
    stop_servers.append(server := serve(monkeypatch, root, delay=0.02))
    ctx = multiprocessing.get_context("fork")
    children = [ctx.Process(target=_download_in_child, args=(False,)) for _ in range(2)]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=60)
    assert [c.exitcode for c in children] == [0, 0]
    assert len(only_file_requests(server)) == 1  # the second process waited and used the first one's file
    assert (cache / FILE).read_bytes() == (root / RELATIVE).read_bytes()
    assert [p.name for p in cache.iterdir()] == [FILE]
    assert "waiting: another process is downloading hopper_medium-v2.hdf5" in capfd.readouterr().err


# ------------------------------------------------------------------------------------------------------------------
# failures: one line, the URL, nothing under the final name


@pytest.mark.parametrize("code, tries", [(404, 1), (500, 3)])
def test_http_errors(served, monkeypatch, stop_servers, code, tries):
    root, cache = served
    stop_servers.append(server := serve(monkeypatch, root, f"status:{code}"))
    with pytest.raises(DataError) as info:
        fetch_d4rl(NAME, progress=False, **FAST)
    message = str(info.value)
    assert f"{server.url}{RELATIVE}: HTTP {code}" in message and "\n" not in message
    assert f"place it at {cache / FILE}" in message
    assert len(server.requests) == tries  # 404 is final, 500 is retried
    assert_nothing_final(cache)


def test_no_server_at_all_names_the_url(served, monkeypatch):
    _, cache = served
    monkeypatch.setenv("RLCORE_D4RL_URL", "http://127.0.0.1:9/")  # the discard port: connection refused
    with pytest.raises(DataError, match=r"could not download http://127.0.0.1:9/gym_mujoco_v2/hopper_medium-v2"
                                        r".hdf5: no HTTP status, ConnectionRefusedError"):
        fetch_d4rl(NAME, progress=False, **FAST)
    assert_nothing_final(cache)


def test_truncated_body_with_correct_length_never_becomes_the_file(served, monkeypatch, stop_servers):
    root, cache = served
    stop_servers.append(server := serve(monkeypatch, root, "truncate"))
    size = (root / RELATIVE).stat().st_size
    with pytest.raises(DataError, match=rf"the connection closed after {size // 2} of {size} bytes \(3 attempts"):
        fetch_d4rl(NAME, progress=False, **FAST)
    assert len(only_file_requests(server)) == 4  # the first one brought bytes, three more did not
    assert_nothing_final(cache, part_allowed=True)  # the bytes that did arrive are kept for a later resume


def test_wrong_body_fails_the_check_and_is_deleted(served, monkeypatch, stop_servers):
    root, cache = served
    stop_servers.append(serve(monkeypatch, root))
    (root / RELATIVE).write_bytes(b"<html>mirror maintenance</html>" * 100)
    with pytest.raises(DataError, match="failed its check and was deleted: .* is not an HDF5 file; it looks like HTML"):
        fetch_d4rl(NAME, progress=False, **FAST)
    assert_nothing_final(cache)
    write_file(root / RELATIVE, episodic_arrays([50], ["timeout"], 17, 6))  # a walker2d file behind a hopper name
    with pytest.raises(DataError, match="observations of size 17 but task 'hopper-medium-v2'"):
        fetch_d4rl(NAME, progress=False, **FAST)
    assert_nothing_final(cache)


@pytest.mark.parametrize("variable", ["RLCORE_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_never_touches_the_network(served, monkeypatch, stop_servers, variable):
    root, cache = served
    stop_servers.append(server := serve(monkeypatch, root))
    monkeypatch.setenv(variable, "1")
    with pytest.raises(DataError, match=rf"{FILE} is missing\) and downloads are off \({variable}=1\); fetch "
                                        rf"{server.url}{RELATIVE} elsewhere and place it at {cache / FILE}"):
        load_dataset(NAME)
    assert server.requests == [] and not cache.exists()


# ------------------------------------------------------------------------------------------------------------------
# CLI


def test_cli_download_list_offline_and_404(served, monkeypatch, stop_servers, capsys):
    root, cache = served
    stop_servers.append(serve(monkeypatch, root))
    assert main(["data", "download", NAME, "--offline"]) == 2
    assert "downloads are off (RLCORE_OFFLINE=1)" in capsys.readouterr().err
    for var in ("RLCORE_OFFLINE", "HF_HUB_OFFLINE"):  # main() set them for the rest of the process
        monkeypatch.setenv(var, "0")
    assert main(["data", "download", NAME, "--no-progress"]) == 0
    captured, size = capsys.readouterr(), (root / RELATIVE).stat().st_size
    assert captured.out == f"{NAME}: {cache / FILE} ({size / 1024:.1f} KiB)\n"
    assert captured.err == (f"downloading {os.environ['RLCORE_D4RL_URL']}{RELATIVE} ({size / 2**20:.1f} MiB) -> "
                            f"{cache / FILE}\n")
    assert (cache / FILE).read_bytes() == (root / RELATIVE).read_bytes()
    assert main(["data", "list", "--local"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[0] == "pendulum-scripted-v0" and out[2].split()[:4] == [NAME, "d4rl", RELATIVE, "local"]
    assert len(out) == 4 and out[-1].startswith(f"1 local; D4RL files in {cache}")
    assert main(["data", "download", "door-human-v1", "--dir", str(cache / "other")]) == 2
    (err,) = capsys.readouterr().err.strip().splitlines()  # one line: nothing is announced before the server answers
    assert err.startswith(f"error: could not download {os.environ['RLCORE_D4RL_URL']}hand_dapg_v1/door-human-v1.hdf5: "
                          "HTTP 404 Not Found; check the network or the mirror (RLCORE_D4RL_URL), or download the "
                          f"file by hand and place it at {cache / 'other' / 'door-human-v1.hdf5'}")


def test_list_shows_sources_and_partial_files(served, monkeypatch):
    _, cache = served
    cache.mkdir()
    (cache / "door-human-v1.hdf5.part").write_bytes(b"x" * 2048)
    rows = {r["name"]: r for r in dataset_table()}
    assert len(rows) == len(d4rl_relative_paths()) + len(MINARI_PORTS) + 1
    assert (rows["door-human-v1"]["status"], rows["door-human-v1"]["size"]) == ("partial", 2048)
    assert rows[NAME]["status"] == "missing" and rows[NAME]["size"] is None
    assert rows["mujoco/hopper/medium-v0"]["source"] == "minari (port of hopper-medium-v2)"
    with pytest.raises(UserError, match="did you mean hopper-medium-v2"):
        fetch_dataset("hoper-medium-v2")


# ------------------------------------------------------------------------------------------------------------------
# Minari: its own download function (no hub here, so a stand-in that writes a real local dataset)


def test_minari_id_downloads_through_minari(tmp_path, monkeypatch):
    minari = pytest.importorskip("minari", reason="the minari extra is not installed")
    import gymnasium as gym
    from minari.data_collector.episode_buffer import EpisodeBuffer

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    monkeypatch.setenv("RLCORE_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match=r"Minari dataset 'mujoco/hopper/medium-v0' is not local \(.* is missing\) "
                                        r"and downloads are off \(HF_HUB_OFFLINE=1\)"):
        load_dataset("mujoco/hopper/medium-v0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    calls = []

    def fake_download(dataset_id, force_download=False):
        calls.append(dataset_id)
        env = gym.make("Hopper-v5", max_episode_steps=30)
        obs, _ = env.reset(seed=0)
        rows = {"observations": [obs], "actions": [], "rewards": [], "terminations": [], "truncations": []}
        for _ in range(30):
            action = env.action_space.sample()
            obs, reward, terminated, truncated, _ = env.step(action)
            for key, value in zip(rows, (obs, action, reward, terminated, truncated)):
                rows[key].append(value)
            if terminated:
                break
        buffer = EpisodeBuffer(id=0, observations=np.array(rows["observations"]), actions=np.array(rows["actions"]),
                               rewards=rows["rewards"], terminations=rows["terminations"],
                               truncations=rows["truncations"], infos={})
        with pytest.warns(UserWarning):
            minari.create_dataset_from_buffers(dataset_id, [buffer], env=env, algorithm_name="random")

    monkeypatch.setattr(minari, "download_dataset", fake_download)
    ds = load_dataset("mujoco/hopper/medium-v0", task=NAME)
    assert calls == ["mujoco/hopper/medium-v0"] and ds.metadata["format"] == "minari" and ds.obs_dim == 11
    load_dataset("minari:mujoco/hopper/medium-v0")
    assert calls == ["mujoco/hopper/medium-v0"]  # local now: no second download

    def failing_download(dataset_id, force_download=False):
        raise ValueError(f"Couldn't find any version for dataset {dataset_id} in the remote Farama server.\nmore")

    monkeypatch.setattr(minari, "download_dataset", failing_download)
    with pytest.raises(DataError, match=r"could not download Minari dataset 'D4RL/door/human-v2' \(ValueError: "
                                        r"Couldn't find .* server\.\); check the network") as info:
        fetch_dataset("minari:D4RL/door/human-v2")
    assert "\n" not in str(info.value)


def test_module_docstring_example():
    import doctest

    import rlcore.envs.offline.download as module

    assert doctest.testmod(module).failed == 0
