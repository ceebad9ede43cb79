"""Analytics: the metering ledger's derived state.

The metering stream is the raw ledger; everything here derives from it (see
docs/analytics.md). Dimension columns are plain integers rather than foreign
keys on purpose: a rollup must survive the deletion of the application or API
it counts (an invoice still refers to it), and the consumer must never fail a
batch because a referenced row is gone. 0 and "" stand for "unknown" so that
the unique constraint used by the upserts sees one value, not NULLs that
compare distinct.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

# Latency histogram upper bounds in milliseconds; the last bucket is open-ended.
# Roughly a 1-1.5-2-3-5-7 series: within-bucket interpolation keeps the p50,
# p95 and p99 estimates within about 20% of the true value at any scale.
LATENCY_BUCKETS_MS: tuple[float, ...] = (
    1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700,
    1000, 1500, 2000, 3000, 5000, 10000, 30000,
)
LATENCY_FIELDS: tuple[str, ...] = tuple(f"lat_{i:02d}" for i in range(len(LATENCY_BUCKETS_MS) + 1))
# Longer endpoint labels are cut to this (the gateway keeps them far shorter).
ENDPOINT_MAX_CHARS = 100


class Granularity(models.TextChoices):
    MINUTE = "m", "Minute"
    HOUR = "h", "Hour"
    DAY = "d", "Day"


class RollupMetrics(models.Model):
    """What every rollup row counts."""

    requests = models.BigIntegerField(default=0)
    admitted = models.BigIntegerField(default=0, help_text="decision == allowed: what the gateway counted and bills.")
    errors = models.BigIntegerField(default=0, help_text="status >= 400")
    bytes_in = models.BigIntegerField(default=0)
    bytes_out = models.BigIntegerField(default=0)
    latency_sum_ms = models.FloatField(default=0)
    lat_00 = models.BigIntegerField(default=0)
    lat_01 = models.BigIntegerField(default=0)
    lat_02 = models.BigIntegerField(default=0)
    lat_03 = models.BigIntegerField(default=0)
    lat_04 = models.BigIntegerField(default=0)
    lat_05 = models.BigIntegerField(default=0)
    lat_06 = models.BigIntegerField(default=0)
    lat_07 = models.BigIntegerField(default=0)
    lat_08 = models.BigIntegerField(default=0)
    lat_09 = models.BigIntegerField(default=0)
    lat_10 = models.BigIntegerField(default=0)
    lat_11 = models.BigIntegerField(default=0)
    lat_12 = models.BigIntegerField(default=0)
    lat_13 = models.BigIntegerField(default=0)
    lat_14 = models.BigIntegerField(default=0)
    lat_15 = models.BigIntegerField(default=0)
    lat_16 = models.BigIntegerField(default=0)
    lat_17 = models.BigIntegerField(default=0)
    lat_18 = models.BigIntegerField(default=0)
    lat_19 = models.BigIntegerField(default=0)
    lat_20 = models.BigIntegerField(default=0)
    lat_21 = models.BigIntegerField(default=0)
    lat_22 = models.BigIntegerField(default=0)
    lat_23 = models.BigIntegerField(default=0)
    lat_24 = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class Rollup(RollupMetrics):
    """Counts for one time bucket and one combination of dimensions."""

    granularity = models.CharField(max_length=1, choices=Granularity.choices)
    bucket = models.DateTimeField(help_text="Start of the minute, hour or UTC day.")
    api_id = models.BigIntegerField(default=0)
    version = models.CharField(max_length=40, default="", blank=True)
    application_id = models.BigIntegerField(default=0)
    key_prefix = models.CharField(max_length=16, default="", blank=True)
    plan_id = models.BigIntegerField(default=0)
    subscription_id = models.BigIntegerField(default=0)
    endpoint = models.CharField(
        max_length=ENDPOINT_MAX_CHARS, default="", blank=True,
        help_text="The gateway's bounded label of the path within the version; empty when unknown.",
    )
    status = models.PositiveSmallIntegerField(default=0, help_text="HTTP status; 0 when unknown (or before 0005).")
    status_class = models.PositiveSmallIntegerField(help_text="1..5 for 1xx..5xx; 0 when no status.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "granularity", "bucket", "api_id", "version", "application_id",
                    "key_prefix", "plan_id", "subscription_id", "endpoint", "status", "status_class",
                ],
                name="rollup_unique_dimensions",
            )
        ]
        indexes = [
            # Dashboards scan one granularity's time range; without this the planner
            # misjudges the range and scans the whole table.
            models.Index(fields=["granularity", "bucket"], name="rollup_time_idx"),
            # Developer pages and invoices filter by application or subscription first.
            models.Index(fields=["granularity", "application_id", "bucket"], name="rollup_app_idx"),
            models.Index(fields=["granularity", "subscription_id", "bucket"], name="rollup_sub_idx"),
            models.Index(fields=["granularity", "api_id", "bucket"], name="rollup_api_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.granularity} {self.bucket:%Y-%m-%d %H:%M} api={self.api_id} app={self.application_id}"


class TrafficRollup(RollupMetrics):
    """The same counts without the per-application dimensions, written in the same
    batch transaction. The operator dashboard's series read this: with 1,000
    applications it has about a thousandth of Rollup's rows for a time range.

    ``partition`` is the metering partition whose consumer wrote the row: every
    partition carries traffic of every API, so without it each row would have P
    writers. Readers sum over it (every read here aggregates anyway)."""

    granularity = models.CharField(max_length=1, choices=Granularity.choices)
    bucket = models.DateTimeField()
    partition = models.PositiveSmallIntegerField(default=0)
    api_id = models.BigIntegerField(default=0)
    version = models.CharField(max_length=40, default="", blank=True)
    plan_id = models.BigIntegerField(default=0)
    endpoint = models.CharField(max_length=ENDPOINT_MAX_CHARS, default="", blank=True)
    status = models.PositiveSmallIntegerField(default=0)
    status_class = models.PositiveSmallIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "granularity", "bucket", "partition", "api_id", "version", "plan_id", "endpoint", "status",
                    "status_class",
                ],
                name="traffic_unique_dimensions",
            )
        ]
        indexes = [models.Index(fields=["granularity", "bucket"], name="traffic_time_idx")]

    def __str__(self) -> str:
        return f"{self.granularity} {self.bucket:%Y-%m-%d %H:%M} api={self.api_id} {self.version}"


class ProcessedBatch(models.Model):
    """One row per metering batch ever counted: the dedupe ledger.

    ``day`` is the UTC day of the batch's oldest request, so a replayed batch (same
    id, same requests) always lands on the same row. On PostgreSQL the table is
    partitioned by range of ``day``, one partition a day (migration 0005): retention
    drops whole partitions, and the primary key includes the partition column, as
    PostgreSQL requires. On SQLite it is a plain table.
    """

    pk = models.CompositePrimaryKey("day", "batch_id")
    day = models.IntegerField(help_text="Days since the Unix epoch of the batch's oldest request.")
    batch_id = models.CharField(max_length=120)
    partition = models.PositiveSmallIntegerField(default=0, help_text="Metering partition it was read from.")
    requests = models.IntegerField(default=0)
    committed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.batch_id} (day {self.day})"


class DeadLetter(models.Model):
    """A stream entry that could not be parsed. Kept for inspection and acked,
    so that one bad entry cannot wedge the consumer group. The raw bytes also go to
    the dead-letter stream (analytics.ingest.consumer.DEAD_LETTER_STREAM)."""

    stream_id = models.CharField(
        max_length=60, unique=True, help_text="<stream tag>/<entry id>, e.g. m0/1700000000000-0"
    )
    fields = models.JSONField()
    error = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.stream_id}: {self.error[:60]}"


class ConsumerStat(models.Model):
    """Running totals per consumer, updated in the batch transaction."""

    consumer = models.CharField(max_length=120, unique=True)
    batches = models.BigIntegerField(default=0, help_text="Transactions committed.")
    events_counted = models.BigIntegerField(default=0)
    duplicates_skipped = models.BigIntegerField(default=0)
    too_old_skipped = models.BigIntegerField(default=0)
    dead_letters = models.BigIntegerField(default=0)
    last_stream_id = models.CharField(max_length=40, blank=True)
    last_batch_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.consumer


class BillingPeriod(models.Model):
    """A calendar month (UTC). Once closed its invoices are final and late usage
    goes to UsageAdjustment instead."""

    month = models.DateField(unique=True, help_text="First day of the month.")
    closed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} ({'closed' if self.closed_at else 'open'})"


class UsageAdjustment(models.Model):
    """Billable requests that arrived after their month was closed.

    They are carried onto the next open invoice as a separate line, never added
    to the closed one.
    """

    subscription_id = models.BigIntegerField()
    plan_id = models.BigIntegerField(default=0)
    usage_month = models.DateField(help_text="The closed month the requests belong to.")
    requests = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    invoice = models.ForeignKey(
        "Invoice", on_delete=models.SET_NULL, null=True, blank=True, related_name="adjustments",
        help_text="The invoice that carried it, once final.",
    )

    class Meta:
        indexes = [models.Index(fields=["subscription_id", "usage_month"], name="adjustment_sub_idx")]

    def __str__(self) -> str:
        return f"{self.requests} late requests on subscription {self.subscription_id} for {self.usage_month:%Y-%m}"


class InvoiceStatus(models.TextChoices):
    """draft -> issued ("final", numbered when its month closes) -> paid or void.
    A void invoice keeps its number; a credit note (CreditNote) cancels its amount."""

    DRAFT = "draft", "Draft"
    FINAL = "final", "Issued"
    PAID = "paid", "Paid"
    VOID = "void", "Void"


# Every state an invoice can be in once it has a number: its lines never change again.
ISSUED_STATES = (InvoiceStatus.FINAL, InvoiceStatus.PAID, InvoiceStatus.VOID)


class Invoice(models.Model):
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="invoices")
    month = models.DateField(help_text="First day of the billed month.")
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=5, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT)
    number = models.CharField(max_length=40, blank=True, help_text="Assigned when final.")
    total = models.DecimalField(max_digits=14, decimal_places=3, default=0)
    updated_at = models.DateTimeField(auto_now=True)
    finalized_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-month", "organization_id", "currency"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "month", "currency"], name="invoice_unique_org_month")
        ]

    def __str__(self) -> str:
        return f"{self.organization} {self.month:%Y-%m} {self.currency} ({self.status})"


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    kind = models.CharField(max_length=12, default="usage", help_text="usage or adjustment")
    subscription_id = models.BigIntegerField()
    application_id = models.BigIntegerField(default=0)
    api_id = models.BigIntegerField(default=0)
    plan_id = models.BigIntegerField(default=0)
    description = models.CharField(max_length=240)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    fraction = models.DecimalField(max_digits=9, decimal_places=6, help_text="Share of the month, for proration.")
    base_fee = models.DecimalField(max_digits=14, decimal_places=3)
    included_requests = models.BigIntegerField()
    used_requests = models.BigIntegerField()
    overage_requests = models.BigIntegerField()
    overage_fee = models.DecimalField(max_digits=14, decimal_places=3)
    amount = models.DecimalField(max_digits=14, decimal_places=3)
    daily_usage = models.JSONField(default=dict, help_text="ISO day -> billed requests, for reconciliation.")

    class Meta:
        ordering = ["invoice", "subscription_id", "period_start", "id"]

    def __str__(self) -> str:
        return self.description


class QuotaAlert(models.Model):
    """A developer's choice of quota percentages at which to be emailed."""

    application = models.OneToOneField("keys.Application", on_delete=models.CASCADE, related_name="quota_alert")
    percentages = models.JSONField(default=list, help_text="e.g. [80, 100]")
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"alerts for application {self.application_id} at {self.percentages}"


class QuotaAlertSent(models.Model):
    """One email per subscription, quota window and threshold: the unique
    constraint makes a retried notification task send nothing twice."""

    subscription_id = models.BigIntegerField()
    window = models.CharField(max_length=12, help_text="d2026-11-22 or m2026-11")
    percent = models.PositiveSmallIntegerField()
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subscription_id", "window", "percent"], name="quota_alert_sent_once")
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.window} {self.percent}%"


class Reconciliation(models.Model):
    """Per subscription and UTC day: the gateway's admitted counter beside the rollups."""

    subscription_id = models.BigIntegerField()
    day = models.DateField()
    gateway_admitted = models.BigIntegerField(null=True, blank=True, help_text="None: counter not readable.")
    rollup_admitted = models.BigIntegerField(default=0)
    checked_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-day", "subscription_id"]
        constraints = [models.UniqueConstraint(fields=["subscription_id", "day"], name="reconciliation_unique")]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.day}: gateway {self.gateway_admitted} rollups {self.rollup_admitted}"


class DeprecationNotice(models.Model):
    """Record of a deprecation email, so the report shows who was told when."""

    api_id = models.BigIntegerField()
    version = models.CharField(max_length=40)
    application_id = models.BigIntegerField()
    sent_to = models.JSONField(default=list)
    sent_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    sent_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.api_id} {self.version} -> application {self.application_id}"


class OperatorAlert(models.Model):
    """One row per condition operators are alerted about (metering lag, dead letters).

    ``raised_at`` is set while the condition holds: the email goes out once, when it is
    first set, and the row is re-armed (``raised_at`` cleared) when the condition clears,
    so a new incident emails again and a lasting one does not email every check."""

    name = models.CharField(max_length=40, unique=True)
    raised_at = models.DateTimeField(null=True, blank=True, help_text="Start of the open incident; None: all clear.")
    cleared_at = models.DateTimeField(null=True, blank=True, help_text="End of the last incident.")
    emailed_at = models.DateTimeField(null=True, blank=True)
    incidents = models.PositiveIntegerField(default=0)
    value = models.FloatField(default=0, help_text="The measured value at the last check.")
    threshold = models.FloatField(default=0)
    summary = models.CharField(max_length=300, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name}: {'raised' if self.raised_at else 'clear'}"


class InvoiceNumberCounter(models.Model):
    """The last invoice or credit-note number issued in a calendar year (UTC).

    One row per year, locked (SELECT ... FOR UPDATE) by the transaction that issues a
    document and incremented in it: numbers are sequential and gapless, because a
    rolled-back issue rolls the counter back with it, and two issuers wait for each
    other instead of taking the same number.
    """

    year = models.PositiveIntegerField(unique=True)
    last = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.year}: {self.last}"


class CreditNote(models.Model):
    """A correction of an issued invoice: a negative amount that references it.

    It is numbered in the invoices' own sequence (it is a negative invoice), and
    like an invoice it never changes once issued."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    number = models.CharField(max_length=40, unique=True)
    currency = models.CharField(max_length=3)
    amount = models.DecimalField(max_digits=14, decimal_places=3, help_text="Negative: what it takes off.")
    reason = models.CharField(max_length=200)
    issued_at = models.DateTimeField()
    issued_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")

    class Meta:
        ordering = ["issued_at", "id"]

    def __str__(self) -> str:
        return f"Credit note {self.number} on {self.invoice.number}"
