import argparse
import asyncio
import logging

from sis_consumer.consumer import run
from sis_consumer.store import EnrolmentStore

parser = argparse.ArgumentParser(description="Record registrations from registration.events")
parser.add_argument("--bootstrap", default="127.0.0.1:19092", help="Kafka bootstrap servers")
parser.add_argument("--database", default="sis.sqlite3", help="SQLite file of enrolments")
parser.add_argument("--group", default="sis-enrolment", help="Kafka consumer group")
args = parser.parse_args()
logging.basicConfig(level=logging.INFO)
asyncio.run(run(args.bootstrap, EnrolmentStore(args.database), group_id=args.group))
