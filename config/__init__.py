from config.loader import ConfigError, load_config, parse_config
from config.model import Environment, OrgConfig

__all__ = ["ConfigError", "Environment", "OrgConfig", "load_config", "parse_config"]
