"""Suite-wide settings: property tests never fail for being slow on a busy 2-core machine."""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "smsgw", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("smsgw")
