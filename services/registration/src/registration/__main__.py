import sys

from opr_shared.cli import main

from registration.main import build_runtime, create_app
from registration.settings import Settings

sys.exit(
    main(
        sys.argv[1:], settings_factory=Settings, build_runtime=build_runtime, create_app=create_app
    )
)
