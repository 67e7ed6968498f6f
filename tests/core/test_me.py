def test_me_lists_organizations_and_platform_roles(api, world):
    response = api.as_user(world.a.org_admin).get("/api/v1/me/")

    assert response.status_code == 200
    body = response.json()
    assert body["email"] == "admin.a@sme.example"
    assert body["memberships"] == [
        {"organization": world.a.org.pk, "organization_name": "SME a", "role": "admin"}
    ]
    assert body["platform_roles"] == []


def test_me_shows_platform_staff_roles(api, world):
    body = api.as_user(world.b.operator).get("/api/v1/me/").json()

    assert body["platform_roles"] == [
        {"platform": world.b.platform.pk, "platform_name": "Platform b", "role": "operator"}
    ]


def test_me_updates_name_and_language_but_not_email(api, world):
    client = api.as_user(world.a.org_member)

    response = client.patch(
        "/api/v1/me/", {"full_name": "Hugo B.", "language": "en", "email": "x@evil.example"}
    )

    assert response.status_code == 200
    world.a.org_member.refresh_from_db()
    assert (world.a.org_member.full_name, world.a.org_member.language) == ("Hugo B.", "en")
    assert world.a.org_member.email == "member.a@sme.example"


def test_me_requires_authentication(api, db):
    response = api.get("/api/v1/me/")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")
