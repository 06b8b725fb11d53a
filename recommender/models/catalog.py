"""The catalog: movies and viewers, as the platform's metadata APIs describe them."""

from __future__ import annotations

from django.db import models


class Movie(models.Model):
    """A movie, keyed by the platform's slug id (``the+shawshank+redemption+1994``)."""

    id = models.CharField(primary_key=True, max_length=255)
    tmdb_id = models.BigIntegerField(null=True, blank=True)
    imdb_id = models.CharField(max_length=32, blank=True)
    title = models.CharField(max_length=500, blank=True)
    original_title = models.CharField(max_length=500, blank=True)
    adult = models.BooleanField(null=True, blank=True)
    genres = models.JSONField(default=list, blank=True, help_text="Genre names.")
    release_date = models.DateField(null=True, blank=True)
    year = models.PositiveSmallIntegerField(null=True, blank=True, db_index=True)
    runtime = models.PositiveIntegerField(null=True, blank=True, help_text="Minutes.")
    original_language = models.CharField(max_length=16, blank=True)
    popularity = models.FloatField(null=True, blank=True)
    vote_average = models.FloatField(null=True, blank=True)
    vote_count = models.PositiveIntegerField(null=True, blank=True)
    budget = models.BigIntegerField(null=True, blank=True)
    revenue = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=32, blank=True)
    extra = models.JSONField(default=dict, blank=True, help_text="Other metadata fields, kept as sent.")
    first_seen_at = models.DateTimeField(auto_now_add=True)
    enriched_at = models.DateTimeField(null=True, blank=True, help_text="When metadata arrived; null = stub.")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.title or self.id


class Viewer(models.Model):
    """A viewer of the platform (integer id); a stub until their metadata arrives."""

    class Gender(models.TextChoices):
        MALE = "M"
        FEMALE = "F"

    id = models.BigIntegerField(primary_key=True)
    age = models.PositiveSmallIntegerField(null=True, blank=True)
    gender = models.CharField(max_length=1, choices=Gender.choices, blank=True)
    occupation = models.CharField(max_length=64, blank=True, db_index=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    enriched_at = models.DateTimeField(null=True, blank=True, help_text="When metadata arrived; null = stub.")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"viewer {self.id}"

    @property
    def age_band(self) -> str:
        if self.age is None:
            return "unknown"
        for upper, label in ((18, "<18"), (25, "18-24"), (35, "25-34"), (45, "35-44"), (55, "45-54")):
            if self.age < upper:
                return label
        return "55+"
