import pytest


@pytest.mark.parametrize("url", ["/", "/accounts/login/", "/accounts/signup/", "/api/docs/"])
def test_public_pages_render(client, db, url):
    response = client.get(url)

    assert response.status_code == 200


def test_api_docs_load_nothing_from_a_cdn(client, db):
    html = client.get("/api/docs/").content.decode()

    assert "swagger-ui" in html
    assert "cdn" not in html.lower()


def test_home_lists_the_platforms_of_a_logged_in_member(client, world):
    client.force_login(world.a.org_member)

    html = client.get("/").content.decode()

    assert "Platform a" in html
    assert "Platform b" not in html


def test_schema_is_served_as_openapi_3(client, db):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.")
