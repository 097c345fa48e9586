"""Pure parts of the proxy: address rules, Go-style body decoding, toxic values and cutting rules."""

from __future__ import annotations

import random
import socket

import pytest

from chaoslab.proxy.addresses import (
    AddressError,
    join_host_port,
    resolve_listen,
    resolved_listen_string,
    split_host_port,
    split_upstream,
)
from chaoslab.proxy.decode import BodyError, proxy_body, proxy_list_body, read_json, toxic_attributes, toxic_body
from chaoslab.proxy.metrics import LinkLabels, ProxyMetrics
from chaoslab.proxy.toxics import (
    Direction,
    ToxicType,
    bandwidth_pieces,
    float32,
    jitter_ms,
    make_spec,
    slice_sizes,
    validation_error,
)


class TestAddresses:
    """Listen address splitting, resolution and reporting."""

    def test_split_forms(self) -> None:
        """host:port, [v6]:port and :port split like Go."""
        assert split_host_port("localhost:80") == ("localhost", "80")
        assert split_host_port("[::1]:80") == ("::1", "80")
        assert split_host_port(":80") == ("", "80")

    def test_missing_port_message(self) -> None:
        """An address without a port gives Go's message."""
        with pytest.raises(AddressError, match=r"^address local373: missing port in address$"):
            split_host_port("local373")

    def test_too_many_colons(self) -> None:
        """An unbracketed IPv6 address is rejected."""
        with pytest.raises(AddressError, match="too many colons"):
            split_host_port("::1:80")

    def test_join_brackets_ipv6(self) -> None:
        """IPv6 hosts are bracketed when joined."""
        assert join_host_port("::", 5) == "[::]:5"
        assert join_host_port("127.0.0.1", 5) == "127.0.0.1:5"

    def test_localhost_binds_ipv4_only(self) -> None:
        """localhost resolves to one IPv4 socket, reported as 127.0.0.1."""
        target = resolve_listen("localhost:0")
        assert (target.family, target.host, target.port) == (socket.AF_INET, "127.0.0.1", 0)
        assert target.report(4321) == "127.0.0.1:4321"

    def test_wildcards_are_dual_stack(self) -> None:
        """0.0.0.0:P and :P bind [::] dual-stack."""
        for address in ("0.0.0.0:7", ":7"):
            target = resolve_listen(address)
            assert (target.dual_stack, target.report()) == (True, "[::]:7")

    def test_empty_listen_is_loopback_port_zero(self) -> None:
        """[chaoslab] an empty listen binds 127.0.0.1:0."""
        assert resolve_listen("").report() == "127.0.0.1:0"

    def test_bad_port(self) -> None:
        """A port that is not 0..65535 is an error."""
        with pytest.raises(AddressError, match="invalid port"):
            resolve_listen("127.0.0.1:70000")

    def test_resolved_string_for_differs(self) -> None:
        """localhost:P resolves to 127.0.0.1:P; port 0 stays 0."""
        assert resolved_listen_string("localhost:3310") == "127.0.0.1:3310"
        assert resolved_listen_string("localhost:0") == "127.0.0.1:0"

    def test_upstream_split(self) -> None:
        """An upstream is split into host and port, empty host meaning localhost."""
        assert split_upstream("db:5432") == ("db", 5432)
        assert split_upstream(":5432") == ("localhost", 5432)


class TestDecode:
    """Go encoding/json rules for request bodies."""

    def test_first_value_only(self) -> None:
        """Trailing bytes after the first JSON value are ignored."""
        assert proxy_body(read_json(b'{"name": "a"} garbage')).name == "a"

    def test_empty_body_is_eof(self) -> None:
        """An empty or blank body is 'EOF'."""
        for body in (b"", b"  \n"):
            with pytest.raises(BodyError, match=r"^EOF$"):
                read_json(body)

    def test_truncated_body(self) -> None:
        """A truncated object is 'unexpected EOF'."""
        with pytest.raises(BodyError, match="unexpected EOF"):
            read_json(b'{"name": ')

    def test_keys_are_case_insensitive_exact_preferred(self) -> None:
        """Name matches name; an exact key wins over a case variant whatever the order."""
        assert proxy_body(read_json(b'{"NAME": "x", "Upstream": "u:1"}')).upstream == "u:1"
        assert proxy_body(read_json(b'{"name": "exact", "NAME": "other"}')).name == "exact"

    def test_null_means_absent(self) -> None:
        """enabled null decodes as not given."""
        assert proxy_body(read_json(b'{"name": "a", "enabled": null}')).enabled is None

    def test_wrong_type_names_field(self) -> None:
        """A string for a bool is reported with the Go struct field."""
        with pytest.raises(
            BodyError, match=r"cannot unmarshal string into Go struct field Proxy\.enabled of type bool"
        ):
            proxy_body(read_json(b'{"enabled": "yes"}'))

    def test_non_object_proxy(self) -> None:
        """An array where an object is expected is a type error."""
        with pytest.raises(BodyError, match="cannot unmarshal array into Go value of type Proxy"):
            proxy_body(read_json(b"[1]"))

    def test_populate_body(self) -> None:
        """The populate body is an array; null is empty; an object is an error."""
        assert [p.name for p in proxy_list_body(read_json(b'[{"name": "a"}, {"name": "b"}]'))] == ["a", "b"]
        assert proxy_list_body(None) == []
        with pytest.raises(BodyError, match=r"Go value of type \[\]Proxy"):
            proxy_list_body(read_json(b'{"name": "a"}'))

    def test_toxic_body_keeps_attributes_raw(self) -> None:
        """Toxic fields decode; toxicity is float32-rounded; attributes stay for per-type decoding."""
        body = toxic_body(read_json(b'{"type": "latency", "toxicity": 0.2, "Attributes": {"Latency": 5}}'))
        assert (body.type, body.toxicity) == ("latency", 0.2)
        assert toxic_attributes(ToxicType.LATENCY, body.attributes) == {"latency": 5}

    @pytest.mark.parametrize(
        "raw", [b'{"latency": "100"}', b'{"latency": 100.5}', b'{"latency": 1e3}', b'{"latency": true}']
    )
    def test_attributes_accept_only_integers(self, raw: bytes) -> None:
        """Strings, fractions, exponents and booleans are rejected for integer attributes."""
        with pytest.raises(BodyError, match="cannot unmarshal"):
            toxic_attributes(ToxicType.LATENCY, read_json(raw))

    def test_unknown_attributes_ignored_and_null_is_empty(self) -> None:
        """Unknown attribute keys are ignored; null attributes decode to nothing."""
        assert toxic_attributes(ToxicType.BANDWIDTH, read_json(b'{"rate": 3, "extra": "x"}')) == {"rate": 3}
        assert toxic_attributes(ToxicType.BANDWIDTH, None) == {}


class TestToxicValues:
    """ToxicSpec values and validation."""

    def test_json_shape_and_order(self) -> None:
        """All attributes are present in Toxiproxy's order; toxicity 1.0 prints as 1."""
        spec = make_spec("s", ToxicType.SLICER, "UPSTREAM", 1.0, {"delay": 3, "average_size": 10})
        assert spec.direction is Direction.UPSTREAM
        assert spec.to_json() == {
            "attributes": {"average_size": 10, "size_variation": 0, "delay": 3},
            "name": "s",
            "type": "slicer",
            "stream": "UPSTREAM",
            "toxicity": 1,
        }
        assert list(spec.to_json()) == ["attributes", "name", "type", "stream", "toxicity"]

    def test_update_merges_and_keeps_toxicity(self) -> None:
        """with_changes merges attributes and keeps toxicity when None."""
        spec = make_spec("l", ToxicType.LATENCY, "downstream", 0.5, {"latency": 100, "jitter": 10})
        updated = spec.with_changes({"latency": 1000}, None)
        assert (updated.attr("latency"), updated.attr("jitter"), updated.toxicity) == (1000, 10, 0.5)

    def test_float32_shortest_form(self) -> None:
        """Toxicity is stored as float32 and printed shortest: 0.2 stays 0.2."""
        assert float32(0.2) == 0.2
        assert float32(0.1 + 0.2) == 0.3

    @pytest.mark.parametrize(
        ("toxic_type", "attributes", "valid"),
        [
            (ToxicType.BANDWIDTH, {"rate": 0}, True),
            (ToxicType.BANDWIDTH, {"rate": -1}, False),
            (ToxicType.SLICER, {"average_size": 0}, False),
            (ToxicType.SLICER, {"average_size": 10, "size_variation": 10}, True),
            (ToxicType.SLICER, {"average_size": 10, "size_variation": -1}, False),
            (ToxicType.LATENCY, {"latency": -5}, True),
        ],
    )
    def test_validation(self, toxic_type: ToxicType, attributes: dict[str, int], valid: bool) -> None:
        """[chaoslab] values that crash or hang the real server are rejected; others pass."""
        assert (validation_error(make_spec("t", toxic_type, "downstream", 1.0, attributes)) is None) is valid


class TestCutting:
    """Slicer and bandwidth arithmetic."""

    def test_slicer_piece_count_and_sum(self) -> None:
        """480 000 bytes at 1024±512 give 240..720 pieces summing to the whole."""
        sizes = slice_sizes(480_000, 1024, 512, random.Random(1))
        assert 240 <= len(sizes) <= 720
        assert sum(sizes) == 480_000
        assert max(sizes) <= 1536

    def test_slicer_zero_variation_single_bytes(self) -> None:
        """24 bytes with average 1 and variation 0 give exactly 24 one-byte pieces."""
        assert slice_sizes(24, 1, 0, random.Random(1)) == [1] * 24

    def test_slicer_variation_equal_to_average_terminates(self) -> None:
        """A variation as large as the average still cuts into non-empty pieces."""
        sizes = slice_sizes(100_000, 1000, 1000, random.Random(3))
        assert sum(sizes) == 100_000 and all(size > 0 for size in sizes)

    def test_small_chunk_is_not_cut(self) -> None:
        """A chunk within average + variation is one piece."""
        assert slice_sizes(1500, 1024, 512, random.Random(1)) == [1500]

    def test_bandwidth_pieces_are_100_ms_worth(self) -> None:
        """At 10 KB/s a 2500-byte chunk goes as 1000, 1000, 500."""
        assert list(bandwidth_pieces(2500, 10)) == [1000, 1000, 500]

    def test_jitter_range(self) -> None:
        """Jitter draws stay in [-j, j-1] and zero jitter draws nothing."""
        rng = random.Random(5)
        draws = {jitter_ms(rng, 3) for _ in range(200)}
        assert draws == {-3, -2, -1, 0, 1, 2}
        assert jitter_ms(rng, 0) == 0


class TestMetrics:
    """Prometheus rendering of the byte counters."""

    def test_counts_add_per_label_set(self) -> None:
        """Two finished links with the same labels add up."""
        metrics = ProxyMetrics()
        labels = LinkLabels("upstream", "127.0.0.1:1", "p", "u:2")
        metrics.add(labels, 5, 4)
        metrics.add(labels, 1, 1)
        text = metrics.render()
        series = '{direction="upstream",listener="127.0.0.1:1",proxy="p",upstream="u:2"}'
        assert f"toxiproxy_proxy_received_bytes_total{series} 6" in text
        assert f"toxiproxy_proxy_sent_bytes_total{series} 5" in text
        assert "# TYPE toxiproxy_proxy_sent_bytes_total counter" in text
