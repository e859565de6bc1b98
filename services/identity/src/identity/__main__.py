import sys

from opr_shared.cli import main

from identity.main import build_runtime, create_app
from identity.settings import Settings

sys.exit(
    main(
        sys.argv[1:], settings_factory=Settings, build_runtime=build_runtime, create_app=create_app
    )
)
