"""Server-rendered portal pages."""

urlpatterns: list = []
