from hypothesis import given
from hypothesis import strategies as st

from routing.text import count_units, is_gsm7, plan_text

GSM_SAMPLE = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCXYZÄÖÑÜ§¿abcxyzäöñüà"
)
EXTENSION = "€[]{}~^\\|"


def test_short_gsm7_text_is_one_segment():
    plan = plan_text("Hello from smsgw")
    assert plan.encoding == "gsm7"
    assert plan.parts == ("Hello from smsgw",)


def test_160_septets_fit_one_segment_and_161_need_two():
    assert plan_text("a" * 160).num_segments == 1
    plan = plan_text("a" * 161)
    assert plan.num_segments == 2
    assert [len(p) for p in plan.parts] == [153, 8]


def test_extension_characters_cost_two_septets():
    assert count_units("€", "gsm7") == 2
    assert plan_text("€" * 80).num_segments == 1
    assert plan_text("€" * 81).num_segments == 2


def test_escape_sequence_is_never_split():
    body = "a" * 152 + "€" + "b" * 10
    plan = plan_text(body)
    assert plan.parts[0] == "a" * 152
    assert plan.parts[1].startswith("€")


def test_non_gsm_text_goes_ucs2_with_70_and_67_units():
    assert plan_text("щ" * 70).num_segments == 1
    plan = plan_text("щ" * 71)
    assert plan.encoding == "ucs2"
    assert [len(p) for p in plan.parts] == [67, 4]


def test_surrogate_pair_is_never_split():
    plan = plan_text("x" + "😀" * 40)
    assert plan.encoding == "ucs2"
    assert all(count_units(part, "ucs2") <= 67 for part in plan.parts)
    assert "".join(plan.parts) == "x" + "😀" * 40


def test_gsm_alphabet_detection():
    assert is_gsm7(GSM_SAMPLE + EXTENSION)
    assert not is_gsm7("naïve")  # ï is not in GSM 03.38
    assert not is_gsm7("`")  # backtick is not in GSM 03.38 (smpplib maps it wrongly)


@given(st.text(max_size=1600))
def test_parts_rejoin_to_the_body_and_respect_limits(body):
    plan = plan_text(body)
    assert "".join(plan.parts) == body
    single, concat = (160, 153) if plan.encoding == "gsm7" else (70, 67)
    if plan.num_segments == 1:
        assert count_units(body, plan.encoding) <= single
    else:
        assert all(0 < count_units(p, plan.encoding) <= concat for p in plan.parts)


@given(st.text(alphabet=GSM_SAMPLE + EXTENSION, max_size=800))
def test_gsm_only_text_is_always_gsm7(body):
    assert plan_text(body).encoding == "gsm7"
