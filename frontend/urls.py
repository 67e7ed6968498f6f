from django.urls import path

from frontend import views

urlpatterns = [
    path("", views.home, name="home"),
    path("invitations/accept/", views.accept_invitation, name="accept-invitation"),
]
