"""Checks for the TrailblazeGPT course (instructor side only: never shipped to students)."""
